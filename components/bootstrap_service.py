"""The existing bootstrap Service, taken over just enough to become a MetalLB LoadBalancer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from secret_inputs import kept_secret
from stack_config import BootstrapConfig

# Field manager named after the project, so `kubectl get svc --show-managed-fields` says who owns what.
FIELD_MANAGER = "pulumi-macula-lan"


@dataclass(frozen=True)
class BootstrapServiceArgs:
    bootstrap: BootstrapConfig
    # The pools and advertisements: the Service only turns LoadBalancer once MetalLB can serve it.
    wait_for: Sequence[pulumi.Resource]
    # `bootstrap` was set with --secret: its values stay secret in the state and the outputs.
    secret: bool = False


def service_annotations(bootstrap: BootstrapConfig) -> dict[str, str]:
    annotations = {
        # Another deployment owns the Service and declared `type: ClusterIP`; taking that one field
        # needs a forced apply. Everything else it declared (ports, selector) stays its own.
        "pulumi.com/patchForce": "true",
        "pulumi.com/patchFieldManager": FIELD_MANAGER,
    }
    # MetalLB 0.14.3 reads only metallb.universe.tf/* annotations, and refuses a Service that also sets
    # spec.loadBalancerIP, so the pinned IP goes here and nowhere else.
    if bootstrap.ip is not None:
        annotations["metallb.universe.tf/loadBalancerIPs"] = str(bootstrap.ip)
    if bootstrap.pool is not None:
        annotations["metallb.universe.tf/address-pool"] = bootstrap.pool
    if bootstrap.hostname is not None:
        # ExternalDNS then publishes the LoadBalancer IP, not the ingress host's.
        annotations["external-dns.alpha.kubernetes.io/hostname"] = bootstrap.hostname
    return annotations


def first_ingress_ip(status: k8s.core.v1.outputs.ServiceStatusPatch | None) -> str | None:
    """The IP MetalLB wrote into the Service's status, once it has."""
    load_balancer = status.load_balancer if status is not None else None
    ingress = (load_balancer.ingress if load_balancer is not None else None) or []
    return next((entry.ip for entry in ingress if entry.ip), None)


class BootstrapService(pulumi.ComponentResource):
    """`type: LoadBalancer` and MetalLB's annotations on the bootstrap Service, handed back on destroy."""

    external_ip: pulumi.Output[str | None]
    endpoint: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: BootstrapServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("macula:lan:BootstrapService", name, None, opts)
        bootstrap = args.bootstrap
        patch = k8s.core.v1.ServicePatch(
            f"{name}-loadbalancer",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=bootstrap.service,
                namespace=bootstrap.namespace,
                annotations=kept_secret(service_annotations(bootstrap), args.secret),
            ),
            spec=k8s.core.v1.ServiceSpecPatchArgs(type="LoadBalancer"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
        )
        if bootstrap.ip is not None:
            self.external_ip = kept_secret(pulumi.Output.from_input(str(bootstrap.ip)), args.secret)
        else:
            self.external_ip = kept_secret(patch.status.apply(first_ingress_ip), args.secret)
        self.endpoint = self.external_ip.apply(
            lambda ip: f"{ip}:{bootstrap.port}/udp" if ip is not None else None
        )
        self.register_outputs({"externalIp": self.external_ip, "endpoint": self.endpoint})

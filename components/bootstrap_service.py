"""The existing bootstrap Service, taken over just enough to become a MetalLB LoadBalancer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from secret_inputs import kept_secret
from shell_scripts import kubectl_target, script_command
from stack_config import BootstrapConfig

# Field manager named after the project, so `kubectl get svc --show-managed-fields` says who owns what.
FIELD_MANAGER = "pulumi-macula-lan"


@dataclass(frozen=True)
class BootstrapServiceArgs:
    bootstrap: BootstrapConfig
    # The pools and advertisements: the Service only turns LoadBalancer once MetalLB can serve it.
    wait_for: Sequence[pulumi.Resource]
    # kubectl waits for the address on the same cluster as the provider.
    kube_context: str
    kubeconfig: str | None
    # Changes when the cluster is rebuilt (the MetalLB namespace's UID): the address is read again then.
    cluster_identity: pulumi.Input[str]
    # `bootstrap` was set with --secret: its values stay secret in the state and the outputs.
    secret: bool = False
    # kubeContext or kubeconfig was: the text of the wait command, which names them, stays secret.
    target_secret: bool = False


def service_annotations(bootstrap: BootstrapConfig) -> dict[str, str]:
    annotations = {
        # Another deployment owns the Service and declared `type: ClusterIP`; taking that one field
        # needs a forced apply. Everything else it declared (ports, selector) stays its own.
        "pulumi.com/patchForce": "true",
        "pulumi.com/patchFieldManager": FIELD_MANAGER,
        # The provider would wait 10 minutes for the address and then fail naming no reason;
        # wait-for-service-ip.sh waits bootstrap.assignTimeoutSeconds and gives MetalLB's.
        "pulumi.com/skipAwait": "true",
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


def address_command(args: BootstrapServiceArgs) -> str:
    """Waits for MetalLB's address on the Service and prints it (scripts/wait-for-service-ip.sh)."""
    bootstrap = args.bootstrap
    return script_command(
        "wait-for-service-ip.sh",
        *kubectl_target(args.kube_context, args.kubeconfig),
        *("--namespace", bootstrap.namespace, "--service", bootstrap.service),
        *(["--ip", str(bootstrap.ip)] if bootstrap.ip is not None else []),
        *("--timeout", str(bootstrap.assign_timeout_seconds)),
    )


def endpoint(ip: str | None, port: int) -> str | None:
    """IP:port/udp, with an IPv6 address in brackets, as in a URL."""
    if not ip:
        return None
    return f"[{ip}]:{port}/udp" if ":" in ip else f"{ip}:{port}/udp"


class BootstrapService(pulumi.ComponentResource):
    """`type: LoadBalancer` and MetalLB's annotations on the bootstrap Service, handed back on destroy."""

    address: command.local.Command
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
        # The address the cluster reports, once MetalLB has given it: what clients will reach. A command
        # runs only when it is created (pulumi-command has no read), so it is created again whenever
        # what decides the address changes: the annotations (a pinned IP, a pool) or the cluster. Both
        # are inputs, never the Service's live state, so a refresh alone plans nothing.
        self.address = command.local.Command(
            f"{name}-address",
            create=kept_secret(address_command(args), args.secret or args.target_secret),
            triggers=[
                args.cluster_identity,
                kept_secret(json.dumps(service_annotations(bootstrap), sort_keys=True), args.secret),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[patch]),
        )
        self.external_ip = kept_secret(
            self.address.stdout.apply(lambda out: (out or "").strip() or None), args.secret
        )
        self.endpoint = self.external_ip.apply(lambda ip: endpoint(ip, bootstrap.port))
        self.register_outputs({"externalIp": self.external_ip, "endpoint": self.endpoint})

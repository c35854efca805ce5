"""One cluster's MetalLB, LAN address pools and bootstrap Service, from the running stack's config."""

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

import resource_names
from components.address_pools import L2AddressPools, L2AddressPoolsArgs
from components.arp_readiness import ArpReadiness, ArpReadinessArgs
from components.bootstrap_service import BootstrapService, BootstrapServiceArgs
from components.dns_override import DnsOverrideRemoval, DnsOverrideRemovalArgs
from components.metallb import MetalLB, MetalLBArgs
from secret_inputs import kept_secret
from stack_config import load_stack_config
from takeover_plan import announce, refuse_if_needed, survey_and_plan

config = load_stack_config(Path(__file__).resolve().parent)
# Keys set with --secret: whatever is made of them stays secret (secret_inputs).
secret = config.secret_keys


# What the cluster runs already, found out before anything is declared: a MetalLB this stack does not
# manage is refused, or with adoptExisting taken over (see takeover_plan and the README).
intent, takeover = survey_and_plan(config, pulumi.get_project())
announce(takeover)
refuse_if_needed(intent, takeover)

# Every Kubernetes resource goes through this provider, pinned to the stack's own context, so a stack
# never acts on whatever cluster the ambient kubeconfig happens to select.
cluster = k8s.Provider(
    "cluster",
    context=kept_secret(config.kube_context, "kubeContext" in secret),
    kubeconfig=kept_secret(config.kubeconfig, "kubeconfig" in secret),
    # A takeover creates objects that exist: upsert makes such a create a server-side apply, and patch
    # force lets that apply take the fields the runbook's kubectl or Helm own (the webhook's Service
    # name, say). Both stay on while the stack opts in (turning them off later would be a change of its
    # own), made safe by takeover_plan's rename guard: see the README's "Taking over a cluster set up by
    # hand". Without the opt-in both are off, whatever PULUMI_K8S_* says.
    upsert_existing_objects=config.adopt_existing,
    enable_patch_force=config.adopt_existing,
)
on_cluster = pulumi.ResourceOptions(providers=[cluster])

metallb = MetalLB(
    resource_names.METALLB,
    MetalLBArgs(
        chart=config.chart,
        kube_context=config.kube_context,
        kubeconfig=config.kubeconfig,
        stack_mark=intent.mark,
        adopt_existing=config.adopt_existing,
        secret=bool({"kubeContext", "kubeconfig"} & secret),
    ),
    opts=on_cluster,
)

address_pools = L2AddressPools(
    resource_names.ADDRESS_POOLS,
    L2AddressPoolsArgs(
        namespace=metallb.namespace,
        pools=config.pools,
        advertisements=config.advertisements,
        webhook_ready=metallb.webhook_gate,
        stack_mark=intent.mark,
        secret="pools" in secret,
    ),
    opts=on_cluster,
)

arp_readiness = ArpReadiness(
    "arp-readiness",
    ArpReadinessArgs(
        kube_context=config.kube_context,
        kubeconfig=config.kubeconfig,
        clear_lb_exclusion=config.clear_lb_exclusion,
        strict_arp=config.strict_arp,
        cluster_identity=metallb.cluster_identity,
        secret=bool({"kubeContext", "kubeconfig", "clearLoadBalancerExclusion"} & secret),
    ),
)

if config.bootstrap is not None:
    bootstrap = BootstrapService(
        "bootstrap",
        BootstrapServiceArgs(
            bootstrap=config.bootstrap,
            wait_for=[address_pools, arp_readiness],
            kube_context=config.kube_context,
            kubeconfig=config.kubeconfig,
            cluster_identity=metallb.cluster_identity,
            secret="bootstrap" in secret,
            target_secret=bool({"kubeContext", "kubeconfig"} & secret),
        ),
        opts=on_cluster,
    )
    pulumi.export("externalIp", bootstrap.external_ip)
    pulumi.export("endpoint", bootstrap.endpoint)
    pulumi.export("hostname", kept_secret(config.bootstrap.hostname, "bootstrap" in secret))

if config.dns_fix is not None:
    DnsOverrideRemoval(
        "dns-override",
        DnsOverrideRemovalArgs(dns_fix=config.dns_fix, secret="dnsFix" in secret),
    )

pulumi.export("kubeContext", kept_secret(config.kube_context, "kubeContext" in secret))
pulumi.export("pools", address_pools.addresses)

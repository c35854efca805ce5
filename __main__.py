"""One cluster's MetalLB, LAN address pools and bootstrap Service, from the running stack's config."""

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.address_pools import L2AddressPools, L2AddressPoolsArgs
from components.arp_readiness import ArpReadiness, ArpReadinessArgs
from components.bootstrap_service import BootstrapService, BootstrapServiceArgs
from components.dns_override import DnsOverrideRemoval, DnsOverrideRemovalArgs
from components.metallb import MetalLB, MetalLBArgs
from stack_config import load_stack_config

config = load_stack_config(Path(__file__).resolve().parent)

# Every Kubernetes resource goes through this provider, pinned to the stack's own context, so a stack
# never acts on whatever cluster the ambient kubeconfig happens to select.
cluster = k8s.Provider(
    "cluster",
    context=config.kube_context,
    kubeconfig=config.kubeconfig,
)
on_cluster = pulumi.ResourceOptions(providers=[cluster])

metallb = MetalLB(
    "metallb",
    MetalLBArgs(
        chart=config.chart,
        kube_context=config.kube_context,
        kubeconfig=config.kubeconfig,
    ),
    opts=on_cluster,
)

address_pools = L2AddressPools(
    "address-pools",
    L2AddressPoolsArgs(
        namespace=metallb.namespace,
        pools=config.pools,
        advertisements=config.advertisements,
        webhook_ready=metallb.webhook_gate,
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
    ),
)

if config.bootstrap is not None:
    bootstrap = BootstrapService(
        "bootstrap",
        BootstrapServiceArgs(bootstrap=config.bootstrap, wait_for=[address_pools, arp_readiness]),
        opts=on_cluster,
    )
    pulumi.export("externalIp", bootstrap.external_ip)
    pulumi.export("endpoint", bootstrap.endpoint)
    pulumi.export("hostname", config.bootstrap.hostname)

if config.dns_fix is not None:
    DnsOverrideRemoval(
        "dns-override",
        DnsOverrideRemovalArgs(dns_fix=config.dns_fix),
    )

pulumi.export("kubeContext", config.kube_context)
pulumi.export("pools", address_pools.addresses)

"""One cluster's MetalLB and LAN address configuration, from the running stack's config."""

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.address_pools import L2AddressPools, L2AddressPoolsArgs
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

pulumi.export("kubeContext", config.kube_context)
pulumi.export(
    "pools",
    {pool.name: [block.text for block in pool.addresses] for pool in config.pools},
)

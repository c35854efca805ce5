"""A stack's MetalLB address pools and the L2 advertisements that announce them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

import resource_names
from resource_names import marks
from secret_inputs import kept_secret
from stack_config import AdvertisementConfig, PoolConfig

API_VERSION = "metallb.io/v1beta1"


@dataclass(frozen=True)
class L2AddressPoolsArgs:
    namespace: pulumi.Input[str]
    pools: Sequence[PoolConfig]
    advertisements: Sequence[AdvertisementConfig]
    # MetalLB's webhook rejects, and pulumi-kubernetes never retries, objects created before it serves.
    webhook_ready: pulumi.Resource
    # The stack's mark (metallb_survey.MARK_STACK) on every pool and advertisement.
    stack_mark: str
    # `pools` was set with --secret: the addresses stay secret in the state and the outputs.
    secret: bool = False


def pool_spec(pool: PoolConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {"addresses": [block.text for block in pool.addresses]}
    if pool.auto_assign is not None:
        spec["autoAssign"] = pool.auto_assign
    if pool.avoid_buggy_ips is not None:
        spec["avoidBuggyIPs"] = pool.avoid_buggy_ips
    return spec


def advertisement_spec(advertisement: AdvertisementConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {"ipAddressPools": list(advertisement.pools)}
    if advertisement.interfaces:
        spec["interfaces"] = list(advertisement.interfaces)
    if advertisement.node_selectors:
        spec["nodeSelectors"] = [dict(selector) for selector in advertisement.node_selectors]
    return spec


class L2AddressPools(pulumi.ComponentResource):
    """IPAddressPools and L2Advertisements, created only once MetalLB admits them."""

    pools: dict[str, k8s.apiextensions.CustomResource]
    advertisements: dict[str, k8s.apiextensions.CustomResource]
    # Each pool's address ranges as written in the stack file, for the stack's outputs.
    addresses: pulumi.Output[dict[str, list[str]]]

    def __init__(
        self, name: str, args: L2AddressPoolsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(resource_names.ADDRESS_POOLS_TYPE, name, None, opts)

        def mark(kind: str, child: str) -> dict[str, str]:
            types = [resource_names.ADDRESS_POOLS_TYPE, resource_names.KIND_TYPES[kind]]
            return marks(args.stack_mark, resource_names.urn(args.stack_mark, types, child))

        self.pools = {
            pool.name: k8s.apiextensions.CustomResource(
                resource_names.pool(name, pool.name),
                api_version=API_VERSION,
                kind="IPAddressPool",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=pool.name,
                    namespace=args.namespace,
                    annotations=mark("IPAddressPool", resource_names.pool(name, pool.name)),
                ),
                spec=kept_secret(pool_spec(pool), args.secret),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.webhook_ready]),
            )
            for pool in args.pools
        }
        self.advertisements = {
            advertisement.name: k8s.apiextensions.CustomResource(
                resource_names.advertisement(name, advertisement.name),
                api_version=API_VERSION,
                kind="L2Advertisement",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=advertisement.name,
                    namespace=args.namespace,
                    annotations=mark(
                        "L2Advertisement", resource_names.advertisement(name, advertisement.name)
                    ),
                ),
                spec=advertisement_spec(advertisement),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[
                        args.webhook_ready,
                        *(self.pools[pool_name] for pool_name in advertisement.pools),
                    ],
                ),
            )
            for advertisement in args.advertisements
        }
        addresses = {pool.name: [block.text for block in pool.addresses] for pool in args.pools}
        self.addresses = pulumi.Output.from_input(kept_secret(addresses, args.secret))
        self.register_outputs({"addresses": self.addresses, "advertisements": sorted(self.advertisements)})

"""Pool and advertisement specs, checked against MetalLB 0.14.3's own CRD schemas."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from components.address_pools import advertisement_spec, pool_spec
from stack_config import parse_stack_config, read_fleet
from tests.program import PROJECT, PROJECT_DIR, STACKS
from tests.stack_config.fleets import fleet_of
from tests.test_program import stack_value
from tests.upstream import crd_spec_schema, requires_upstream

FULL_OPTIONS = {
    "kubeContext": "kind-test",
    "pools": [
        {
            "name": "lan-pool",
            "addresses": ["10.20.0.0/28", "10.20.1.5-10.20.1.9"],
            "autoAssign": False,
            "avoidBuggyIPs": True,
        }
    ],
    "advertisements": [
        {
            "name": "lan-advertisement",
            "pools": ["lan-pool"],
            "interfaces": ["eth0"],
            "nodeSelectors": [
                {
                    "matchLabels": {"kubernetes.io/hostname": "node-1"},
                    "matchExpressions": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}
                    ],
                }
            ],
        }
    ],
}


def stack_specs(stack: str, values: dict[str, Any] | None = None):
    fleet = fleet_of()
    if values is None:
        values = {key: stack_value(stack, key) for key in ("kubeContext", "pools", "advertisements")}
        fleet = read_fleet(PROJECT_DIR, PROJECT, stack)
    config = parse_stack_config(stack, PROJECT, values, fleet)
    return [pool_spec(p) for p in config.pools], [advertisement_spec(a) for a in config.advertisements]


def test_unset_options_are_left_to_the_crd_defaults():
    pools, advertisements = stack_specs("kind-test", {**FULL_OPTIONS, "advertisements": None})
    assert pools[0]["autoAssign"] is False
    minimal, _ = stack_specs(
        "t", {"kubeContext": "c", "pools": [{"name": "p", "addresses": ["10.0.0.0/30"]}]}
    )
    assert minimal == [{"addresses": ["10.0.0.0/30"]}]
    assert advertisements == [{"ipAddressPools": ["lan-pool"]}]


@requires_upstream
@pytest.mark.parametrize("stack", [*STACKS, "all-options"])
def test_specs_validate_against_upstream_crd_schemas(stack: str):
    pools, advertisements = stack_specs(stack, FULL_OPTIONS if stack == "all-options" else None)
    for spec in pools:
        jsonschema.validate(spec, crd_spec_schema("ipaddresspools"))
    for spec in advertisements:
        jsonschema.validate(spec, crd_spec_schema("l2advertisements"))


@requires_upstream
def test_schema_check_catches_a_field_metallb_does_not_have():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"addresses": [], "autoassign": True}, crd_spec_schema("ipaddresspools"))

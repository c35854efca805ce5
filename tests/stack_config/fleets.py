"""Fleets for the parsing tests: a LAN plan around the test's addresses, and other stacks' pools."""

from __future__ import annotations

from typing import Any

from stack_config.fleet import Fleet, parse_lan_plan
from stack_config.parsing import parse_other_stack_pools
from tests.program import PROJECT

# Around every address the parsing tests use, IPv4 and IPv6.
TEST_SUBNETS = ["8.0.0.0/6", "fd00::/8"]


def fleet_of(
    others: dict[str, Any] | None = None,
    subnet: str | list[str] | None = None,
    reserved: list[dict[str, Any]] | None = None,
) -> Fleet:
    """A fleet on `subnet` whose other stacks have the given raw `pools` values."""
    plan = parse_lan_plan({"subnet": subnet or TEST_SUBNETS, "reserved": reserved or []}, PROJECT)
    return Fleet(
        plan,
        {stack: parse_other_stack_pools(PROJECT, stack, pools) for stack, pools in (others or {}).items()},
    )

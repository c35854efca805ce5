"""MetalLB 0.14.3's own CRD schemas and chart values, read from ../shared/upstream when it is there."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml

from tests.program import PROJECT_DIR

UPSTREAM_DIR = PROJECT_DIR.parent / "shared" / "upstream" / "metallb-0.14.3"

requires_upstream = pytest.mark.skipif(
    not UPSTREAM_DIR.is_dir(),
    reason=f"MetalLB 0.14.3 reference data not found at {UPSTREAM_DIR}: "
    "specs and chart values cannot be checked against upstream",
)


def _strict(schema: Any) -> Any:
    """The schema with unknown fields rejected, as the API server would prune them silently."""
    if isinstance(schema, dict):
        strict = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in strict
            and "additionalProperties" not in strict
            and not strict.get("x-kubernetes-preserve-unknown-fields")
        ):
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_spec_schema(plural: str, version: str = "v1beta1") -> dict[str, Any]:
    crd = yaml.safe_load((UPSTREAM_DIR / "crds" / f"metallb.io_{plural}.yaml").read_text())
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema: dict[str, Any] = _strict(served["schema"]["openAPIV3Schema"]["properties"]["spec"])
    return schema


@cache
def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((UPSTREAM_DIR / "values.yaml").read_text())
    return values


def leaf_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths += leaf_paths(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return paths

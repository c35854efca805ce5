"""The MetalLB component's chart values and the transform of its chart's children. (Its scripts are tested in
tests/scripts/.)"""

from __future__ import annotations

import pulumi
import pytest

from components.metallb import (
    chart_children_transform,
    chart_values,
)
from metallb_survey import MARK_RESOURCE, MARK_STACK
from stack_config import ChartConfig
from tests.upstream import chart_values as upstream_values
from tests.upstream import leaf_paths, requires_upstream

CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


@requires_upstream
@pytest.mark.parametrize("frr_enabled", [False, True])
def test_every_chart_value_path_exists_in_upstream_0_14_3(frr_enabled: bool):
    upstream_paths = set(leaf_paths(upstream_values()))
    for path in leaf_paths(chart_values(ChartConfig(frr_enabled=frr_enabled))):
        assert path in upstream_paths, f"{path} is not a value of MetalLB chart 0.14.3"


@requires_upstream
def test_frr_must_be_switched_off_explicitly():
    assert upstream_values()["speaker"]["frr"]["enabled"] is True
    assert chart_values(ChartConfig())["speaker"]["frr"]["enabled"] is False


def transform(type_: str, name: str = "metallb-chart:bgppeers.metallb.io", metadata=None):
    return chart_children_transform("macula-lan/kind-dev")(
        pulumi.ResourceTransformArgs(
            custom=True,
            type_=type_,
            name=name,
            props={"metadata": metadata or {"name": "x"}, "spec": {}},
            opts=pulumi.ResourceOptions(ignore_changes=["metadata.labels"]),
        )
    )


def test_transform_ignores_the_crd_ca_bundle_and_keeps_other_options():
    result = transform(CRD)
    assert result.opts.ignore_changes == [
        "metadata.labels",
        "spec.conversion.webhook.clientConfig.caBundle",
    ]


@pytest.mark.parametrize(
    "type_",
    [
        "kubernetes:apps/v1:Deployment",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration",
    ],
)
def test_transform_ignores_nothing_on_other_objects(type_: str):
    assert transform(type_, "metallb-chart:x").opts.ignore_changes == ["metadata.labels"]


def test_transform_marks_every_child_with_the_stack_and_its_resources_urn():
    result = transform(
        "kubernetes:apps/v1:Deployment",
        "metallb-chart:metallb-system/metallb-controller",
        {"name": "metallb-controller", "annotations": {"kept": "yes"}},
    )
    assert result.props == {
        "metadata": {
            "name": "metallb-controller",
            "annotations": {
                "kept": "yes",
                MARK_STACK: "macula-lan/kind-dev",
                MARK_RESOURCE: "urn:pulumi:kind-dev::macula-lan::macula:lan:MetalLB"
                "$kubernetes:helm.sh/v4:Chart$kubernetes:apps/v1:Deployment"
                "::metallb-chart:metallb-system/metallb-controller",
            },
        },
        "spec": {},
    }

"""The real `__main__.py`, run under Pulumi's mocks for every committed stack file."""

from __future__ import annotations

import json

import pulumi
import pytest
import yaml

from stack_config import ConfigError
from tests.program import PROJECT, PROJECT_DIR, STACKS, ProgramRun, run_program, stack_file_config

POOL = "kubernetes:metallb.io/v1beta1:IPAddressPool"
ADVERTISEMENT = "kubernetes:metallb.io/v1beta1:L2Advertisement"
NAMESPACE = "kubernetes:core/v1:Namespace"
CHART = "kubernetes:helm.sh/v4:Chart"
LOCAL_COMMAND = "command:local:Command"
REMOTE_COMMAND = "command:remote:Command"
SERVICE_PATCH = "kubernetes:core/v1:ServicePatch"


def stack_value(stack: str, key: str):
    value = stack_file_config(stack)[f"{PROJECT}:{key}"]
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


@pytest.fixture(scope="module", params=STACKS)
def stack_run(request) -> tuple[str, ProgramRun]:
    return request.param, run_program(request.param)


def test_committed_stacks_are_the_seed_clusters():
    assert {"kind-dev", "beam00", "beam01"} <= set(STACKS)


def test_pulumi_yaml_forbids_the_default_kubernetes_provider():
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    assert project["config"]["pulumi:disable-default-providers"] == ["kubernetes"]
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": "venv"},
    }
    assert project["backend"]["url"].startswith("file://")


def test_every_kubernetes_resource_uses_the_stack_context_provider(stack_run):
    stack, run = stack_run
    provider = run.one("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == stack_value(stack, "kubeContext")
    kubernetes_resources = [r for r in run.resources if r.type.startswith("kubernetes:")]
    assert len(kubernetes_resources) >= 4
    for resource in kubernetes_resources:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_namespace_allows_the_privileged_speaker(stack_run):
    _, run = stack_run
    namespace = run.one(NAMESPACE)
    assert namespace.inputs["metadata"]["name"] == "metallb-system"
    assert namespace.inputs["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
    }


def test_chart_is_metallb_0_14_3_from_upstream_with_frr_off(stack_run):
    _, run = stack_run
    chart = run.one(CHART)
    assert chart.inputs["chart"] == "metallb"
    assert chart.inputs["version"] == "0.14.3"
    assert chart.inputs["repositoryOpts"] == {"repo": "https://metallb.github.io/metallb"}
    assert chart.inputs["name"] == "metallb"
    assert chart.inputs["namespace"] == "metallb-system"
    assert chart.inputs["values"] == {"speaker": {"frr": {"enabled": False}}}


def test_chart_children_leave_the_crd_ca_bundle_to_the_controller(stack_run):
    _, run = stack_run
    transforms = run.one(CHART).transforms
    assert len(transforms) == 1
    # The mock monitor does not run transforms; run it the way the engine would for the CRD child.
    crd = pulumi.ResourceTransformArgs(
        custom=True,
        type_="kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
        name="metallb-chart:bgppeers.metallb.io",
        props={},
        opts=pulumi.ResourceOptions(),
    )
    result = transforms[0](crd)
    assert result.opts.ignore_changes == ["spec.conversion.webhook.clientConfig.caBundle"]


def test_resources_come_in_order_namespace_chart_gate_pools_advertisements(stack_run):
    _, run = stack_run
    namespace, chart, gate = (
        run.one(NAMESPACE),
        run.one(CHART),
        run.one(LOCAL_COMMAND, "metallb-webhook-gate"),
    )
    pools, advertisements = run.of_type(POOL), run.of_type(ADVERTISEMENT)
    assert pools and advertisements
    assert run.depends_on(chart, namespace)
    assert run.depends_on(gate, chart)
    for pool in pools:
        assert run.depends_on(pool, gate)
    for advertisement in advertisements:
        assert run.depends_on(advertisement, gate)
        for pool_name in advertisement.inputs["spec"]["ipAddressPools"]:
            pool = next(p for p in pools if p.inputs["metadata"]["name"] == pool_name)
            assert run.depends_on(advertisement, pool)


def test_gate_probes_the_stack_cluster_and_is_bounded(stack_run):
    stack, run = stack_run
    create = run.one(LOCAL_COMMAND, "metallb-webhook-gate").inputs["create"]
    assert "wait-for-metallb-webhook.sh" in create
    assert f"--context {stack_value(stack, 'kubeContext')}" in create
    assert "--timeout 300" in create
    assert str(PROJECT_DIR) not in create, "the command must read the same on every machine"


def test_pools_and_advertisements_match_the_stack_file(stack_run):
    stack, run = stack_run
    declared_pools = {pool["name"]: pool["addresses"] for pool in stack_value(stack, "pools")}
    pools = {p.inputs["metadata"]["name"]: p.inputs["spec"]["addresses"] for p in run.of_type(POOL)}
    assert pools == declared_pools
    for resource in run.of_type(POOL) + run.of_type(ADVERTISEMENT):
        assert resource.inputs["apiVersion"] == "metallb.io/v1beta1"
        assert resource.inputs["metadata"]["namespace"] == "metallb-system"
    assert run.outputs["pools"] == declared_pools


def test_kind_dev_has_the_seed_pool_and_advertisement():
    run = run_program("kind-dev")
    pool = run.one(POOL)
    assert pool.inputs["metadata"]["name"] == "lan-pool"
    assert pool.inputs["spec"] == {"addresses": ["192.168.129.50-192.168.129.60"]}
    advertisement = run.one(ADVERTISEMENT)
    assert advertisement.inputs["metadata"]["name"] == "lan-advertisement"
    assert advertisement.inputs["spec"] == {"ipAddressPools": ["lan-pool"]}


def test_every_child_is_parented_by_its_component(stack_run):
    _, run = stack_run
    components = {r.urn: r for r in run.resources if r.type.startswith("macula:lan:")}
    for resource in run.resources:
        if resource.type.startswith(("kubernetes:", "command:")):
            assert resource.parent in components, resource.name
            assert resource.name.startswith(components[resource.parent].name + "-")


def test_local_chart_path_replaces_the_repository():
    config = stack_file_config("kind-dev")
    config[f"{PROJECT}:metallb"] = {"chartPath": "./charts/metallb-0.14.3.tgz", "frrEnabled": True}
    chart = run_program("kind-dev", config).one(CHART)
    assert chart.inputs["chart"] == "./charts/metallb-0.14.3.tgz"
    assert "repositoryOpts" not in chart.inputs
    assert chart.inputs["values"] == {"speaker": {"frr": {"enabled": True}}}


def test_bad_config_stops_the_program_before_any_resource():
    config = stack_file_config("kind-dev")
    config[f"{PROJECT}:pools"] = [{"name": "lan-pool", "addresses": ["192.168.129.51"]}]
    run = ProgramRun()
    with pytest.raises(ConfigError, match=r"Pulumi.kind-dev.yaml"):
        run_program("kind-dev", config, run=run)
    assert run.resources == []


def test_a_new_stack_needs_no_code_change():
    config = {
        f"{PROJECT}:kubeContext": "beam02",
        f"{PROJECT}:pools": [{"name": "lan-pool", "addresses": ["192.168.129.110-192.168.129.120"]}],
    }
    run = run_program("beam02", config)
    assert run.one(POOL).inputs["spec"]["addresses"] == ["192.168.129.110-192.168.129.120"]
    assert run.one(ADVERTISEMENT).inputs["spec"]["ipAddressPools"] == ["lan-pool"]

"""takeover_plan: what a stack does with the cluster it finds, from surveys of seeded fake clusters."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from metallb_survey import (
    MARK_RESOURCE,
    NATIVE_OBJECTS,
    ClusterSurvey,
    ObjectRef,
    survey_cluster,
)
from stack_config import StackConfig, parse_stack_config
from takeover_plan import (
    TakeoverRefused,
    local_chart_version,
    plan_takeover,
    refuse_if_needed,
    stack_intent,
)
from tests import metallb_installs as installs
from tests.kube_cluster import fake_cluster
from tests.stack_config.fleets import fleet_of
from tests.upstream import requires_upstream

pytestmark = requires_upstream

NS = "metallb-system"
LAN_POOL = ObjectRef("IPAddressPool", NS, "lan-pool")


def config(stack: str = "kind-dev", **values: Any) -> StackConfig:
    base = {
        "kubeContext": "kind-macula-dev",
        "pools": [{"name": "lan-pool", "addresses": [installs.RUNBOOK_POOL_RANGE]}],
    }
    return parse_stack_config(stack, "macula-lan", {**base, **values}, fleet_of(subnet="192.168.128.0/23"))


def survey(*objects: dict[str, Any]) -> ClusterSurvey:
    with fake_cluster(objects) as cluster:
        return survey_cluster(cluster.kubectl())


@pytest.fixture(scope="module")
def runbook() -> ClusterSurvey:
    return survey(
        *installs.runbook_install(), installs.foreign_configmap(), installs.pool("old-pool", "10.9.0.0/29")
    )


@pytest.fixture(scope="module")
def helm() -> ClusterSurvey:
    """`helm install metallb metallb/metallb --set speaker.frr.enabled=false`, the stack's values."""
    objects = installs.chart_install(values=installs.STACK_VALUES)
    return survey(*objects, installs.pool("lan-pool", installs.RUNBOOK_POOL_RANGE))


def plan(stack_config: StackConfig, found: ClusterSurvey):
    return plan_takeover(stack_intent(stack_config, "macula-lan"), found)


def refusal(stack_config: StackConfig, found: ClusterSurvey) -> str:
    with pytest.raises(TakeoverRefused) as raised:
        refuse_if_needed(stack_intent(stack_config, "macula-lan"), plan(stack_config, found))
    return str(raised.value)


def test_an_empty_cluster_goes_ahead_with_nothing_to_take():
    result = plan(config(), survey(installs.node()))
    assert not result.refused
    assert result.lines() == ["cluster kind-macula-dev: no MetalLB runs"]


def test_the_runbook_install_is_refused_without_the_opt_in(runbook):
    message = refusal(config(), runbook)
    assert "Stack 'kind-dev' (Pulumi.kind-dev.yaml) will not run on cluster kind-macula-dev" in message
    assert "nothing was changed" in message
    assert (
        "MetalLB from the runbook's native manifest: Deployment metallb-system/controller, "
        "DaemonSet metallb-system/speaker" in message
    )
    assert (
        "objects this stack would create, which exist: ConfigMap metallb-system/metallb-excludel2" in message
    )
    assert "IPAddressPool metallb-system/lan-pool" in message
    assert "the runbook's objects a takeover removes: Deployment metallb-system/controller" in message
    assert "`pulumi config set --stack kind-dev adoptExisting true`" in message
    assert "macula-lan:adoptExisting in Pulumi.kind-dev.yaml" in message


def test_the_runbook_install_is_taken_over_with_the_opt_in(runbook):
    result = plan(config(adoptExisting=True), runbook)
    assert not result.refused, result.refusals
    assert result.summary == (
        "MetalLB 0.14.3 from the runbook's native manifest "
        "(Deployment metallb-system/controller, DaemonSet metallb-system/speaker)"
    )
    assert set(result.remove) == {known.ref for known in NATIVE_OBJECTS}
    assert result.remove_webhooks == ["bgppeersvalidationwebhook.metallb.io"]
    assert result.take_over == sorted(
        [
            ObjectRef("ConfigMap", NS, "metallb-excludel2"),
            *(ObjectRef("CustomResourceDefinition", None, f"{p}.metallb.io") for p in (
                "bfdprofiles", "bgpadvertisements", "bgppeers", "communities", "ipaddresspools",
                "l2advertisements",
            )),
            LAN_POOL,
            ObjectRef("L2Advertisement", NS, "lan-advertisement"),
            ObjectRef("Namespace", None, NS),
            ObjectRef("Secret", NS, "webhook-server-cert"),
            ObjectRef("ValidatingWebhookConfiguration", None, "metallb-webhook-configuration"),
        ]
    )  # fmt: skip
    assert result.forget == []
    assert "ConfigMap metallb-system/team-notes (not MetalLB's)" in result.keep
    # Owned by the runbook's controller Deployment, it goes with it.
    assert result.remove_dependents == [ObjectRef("Secret", NS, "memberlist")]
    assert "Secret metallb-system/memberlist (with its owner)" in result.removals()
    assert "every custom resource (pools, advertisements, ...) and the namespace itself" in result.keep


def test_pools_the_stack_file_does_not_declare_are_reported_and_kept(runbook):
    for adopt in (True, False):
        result = plan(config(adoptExisting=adopt), runbook)
        assert any(
            "IPAddressPool metallb-system/old-pool (10.9.0.0/29) is not declared in Pulumi.kind-dev.yaml: "
            "MetalLB "
            "keeps handing out its addresses" in warning
            for warning in result.warnings
        )
        assert ObjectRef("IPAddressPool", NS, "old-pool") not in result.take_over + result.remove


def test_the_report_names_every_step(runbook):
    lines = plan(config(adoptExisting=True), runbook).lines()
    assert lines[0].startswith("cluster kind-macula-dev: MetalLB 0.14.3 from the runbook's native manifest")
    assert lines[1].startswith("take over (the same name in the chart or the stack file): ConfigMap")
    assert lines[2].startswith(
        "remove (the runbook's native-manifest objects): Deployment metallb-system/controller"
    )
    assert any(line.startswith("keep: ") for line in lines)
    assert any(line.startswith("warning: IPAddressPool metallb-system/old-pool") for line in lines)


def test_a_takeover_keeps_the_running_version(runbook):
    message = refusal(config(adoptExisting=True, metallb={"chartVersion": "0.14.4"}), runbook)
    assert (
        'Pulumi.kind-dev.yaml: metallb.chartVersion "0.14.4" differs from the MetalLB the cluster runs '
        "(0.14.3)" in message
    )
    assert 'set metallb.chartVersion to "0.14.3" for the takeover, then upgrade in a later `up`' in message


def test_a_takeover_with_a_local_chart_compares_its_version(runbook, tmp_path: Path):
    chart = tmp_path / "metallb"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: metallb\nversion: 0.14.3\n")
    assert not plan(config(adoptExisting=True, metallb={"chartPath": str(chart)}), runbook).refused
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: metallb\nversion: 0.15.0\n")
    message = refusal(config(adoptExisting=True, metallb={"chartPath": str(chart)}), runbook)
    assert f"metallb.chartPath '{chart}' (chart version 0.15.0) differs" in message
    message = refusal(config(adoptExisting=True, metallb={"chartPath": str(tmp_path / "missing")}), runbook)
    assert "(chart version unreadable): the chart's version cannot be read" in message


def test_local_chart_version_reads_a_packaged_chart(tmp_path: Path):
    archive = tmp_path / "metallb-0.14.3.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"apiVersion: v2\nname: metallb\nversion: 0.14.3\n"
        info = tarfile.TarInfo("metallb/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert local_chart_version(str(archive)) == "0.14.3"
    assert local_chart_version(str(tmp_path / "nothing.tgz")) is None


def test_a_helm_release_is_refused_without_the_opt_in(helm):
    message = refusal(config("beam00", kubeContext="beam00"), helm)
    assert (
        "MetalLB from Helm release metallb-system/metallb: Deployment metallb-system/metallb-controller"
        in message
    )
    assert (
        "Helm's release records a takeover removes: Secret metallb-system/sh.helm.release.v1.metallb.v1"
        in message
    )


def test_a_helm_release_is_taken_over_and_forgotten_with_the_opt_in(helm):
    result = plan(config("beam00", kubeContext="beam00", adoptExisting=True), helm)
    assert not result.refused, result.refusals
    assert result.remove == []
    assert result.forget == [
        ObjectRef("Secret", NS, "sh.helm.release.v1.metallb.v1"),
        ObjectRef("Secret", NS, "sh.helm.release.v1.metallb.v2"),
    ]
    assert ObjectRef("Deployment", NS, "metallb-controller") in result.take_over
    assert ObjectRef("Service", NS, "metallb-webhook-service") in result.take_over
    assert LAN_POOL in result.take_over


@pytest.mark.parametrize(
    ("release", "record", "reason"),
    [
        ("lb", {}, "its objects are named lb-*, this program's metallb-*"),
        (
            "metallb",
            {"values": {"fullnameOverride": "edge-lb"}},
            "renames the chart's objects (fullnameOverride=edge-lb)",
        ),
        ("metallb", {"status": "pending-upgrade"}, "is 'pending-upgrade' (revision 3), not 'deployed'"),
        ("metallb", {"status": "failed"}, "is 'failed' (revision 3), not 'deployed'"),
    ],
)
def test_a_helm_release_that_cannot_be_taken_safely_is_refused_even_with_the_opt_in(release, record, reason):
    objects = [o for o in installs.chart_install(release=release) if "sh.helm" not in o["metadata"]["name"]]
    objects.append(installs.helm_record(release, 3, **record))
    message = refusal(config(adoptExisting=True), survey(*objects))
    assert f"Helm release metallb-system/{release}" in message
    assert reason in message


def test_a_metallb_in_another_namespace_is_refused_even_with_the_opt_in():
    objects = installs.chart_install(helm=False)
    for obj in objects:
        if obj["kind"] == "Deployment":
            obj["metadata"]["namespace"] = "kube-system"
    message = refusal(config(adoptExisting=True), survey(*objects))
    assert (
        "MetalLB runs as Deployment kube-system/metallb-controller (quay.io/metallb/controller:v0.14.3)"
        in message
    )
    assert "a second MetalLB beside it would answer ARP for the same addresses" in message


def test_another_stacks_install_is_refused_even_with_the_opt_in():
    message = refusal(
        config(adoptExisting=True), survey(*installs.chart_install(helm=False, stack="macula-lan/beam01"))
    )
    assert (
        "Namespace metallb-system is managed by stack macula-lan/beam01, not macula-lan/kind-dev" in message
    )


def own_install(namespace_resource: str | None = None) -> list[dict[str, Any]]:
    """What this program leaves on kind-dev's cluster; optionally with the namespace's resource renamed."""
    objects = installs.chart_install(helm=False, stack="macula-lan/kind-dev")
    if namespace_resource is not None:
        objects[0]["metadata"]["annotations"][MARK_RESOURCE] = namespace_resource
    return objects


def test_this_stacks_own_install_is_an_ordinary_stack():
    result = plan(config(adoptExisting=True), survey(*own_install()))
    assert not result.refused, result.refusals
    assert (result.take_over, result.remove, result.forget, result.warnings) == ([], [], [], [])
    assert result.summary.startswith("MetalLB 0.14.3 from this stack (")


def test_an_upgrade_of_the_stacks_own_install_is_noted():
    result = plan(config(metallb={"chartVersion": "0.14.8"}), survey(*own_install()))
    assert not result.refused
    assert result.notes == ["this `up` changes MetalLB from 0.14.3 to 0.14.8"]


def test_the_rename_guard_refuses_an_object_managed_under_another_name():
    found = survey(*own_install("lb-namespace"))
    message = refusal(config(adoptExisting=True), found)
    assert (
        "Namespace metallb-system is managed by resource lb-namespace, and the program now declares it as "
        "urn:pulumi:kind-dev::macula-lan::macula:lan:MetalLB$kubernetes:core/v1:Namespace::"
        "metallb-namespace: a rename (or a move to another parent) without an alias" in message
    )
    assert "then delete the old one (deleting the object)" in message


def test_the_rename_guard_refuses_a_move_to_another_parent():
    moved = "urn:pulumi:kind-dev::macula-lan::kubernetes:core/v1:Namespace::metallb-namespace"
    message = refusal(config(adoptExisting=True), survey(*own_install(moved)))
    assert f"is managed by resource {moved}, and the program now declares it as" in message


def test_a_helm_install_with_the_charts_defaults_is_refused_for_what_it_would_leave():
    objects = installs.chart_install()  # helm install metallb metallb/metallb: FRR on
    message = refusal(config("beam00", kubeContext="beam00", adoptExisting=True), survey(*objects))
    assert (
        "Helm release metallb-system/metallb runs with values this stack does not set: "
        "speaker.frr.enabled=true (the stack: false)" in message
    )
    assert (
        "--reset-values --set speaker.frr.enabled=false`), or set metallb.frrEnabled in Pulumi.beam00.yaml"
        in message
    )
    assert not plan(config("beam00", kubeContext="beam00", adoptExisting=True, metallb={"frrEnabled": True}),
                    survey(*objects)).refused  # fmt: skip


def test_a_helm_release_given_other_values_is_refused():
    values = {**installs.STACK_VALUES, "controller": {"tolerations": [{"operator": "Exists"}]}}
    message = refusal(config(adoptExisting=True), survey(*installs.chart_install(values=values)))
    assert 'controller.tolerations=[{"operator": "Exists"}] (the stack: null)' in message


def test_a_running_version_other_than_the_stacks_is_reported_without_the_opt_in():
    result = plan(config("beam00", kubeContext="beam00"), survey(*installs.chart_install(version="0.13.12")))
    assert result.notes == [
        'the cluster runs MetalLB 0.13.12; Pulumi.beam00.yaml installs metallb.chartVersion "0.14.3"'
    ]


def test_a_pool_the_takeover_changes_is_reported(runbook):
    result = plan(
        config(
            adoptExisting=True, pools=[{"name": "lan-pool", "addresses": ["192.168.129.50-192.168.129.55"]}]
        ),
        runbook,
    )
    assert (
        "IPAddressPool metallb-system/lan-pool has 192.168.129.50-192.168.129.60 in the cluster, "
        "Pulumi.kind-dev.yaml says 192.168.129.50-192.168.129.55: the takeover changes it to the stack file's"
    ) in result.warnings


def test_chart_objects_left_beside_the_stacks_own_install_are_reported_not_taken():
    leftover = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "metallb-frr-startup",
            "namespace": NS,
            "labels": {"app.kubernetes.io/name": "metallb"},
        },
    }
    result = plan(config(), survey(*own_install(), leftover))
    assert not result.refused, result.refusals
    assert result.take_over == []
    assert any(w.startswith("ConfigMap metallb-system/metallb-frr-startup is labelled as the MetalLB chart's")
               for w in result.warnings)  # fmt: skip


def test_the_runbook_beside_the_stacks_own_install_is_finished_or_replaced(runbook):
    mixed = dataclasses.replace(
        runbook,
        workloads=(*runbook.workloads, *survey(*own_install()).workloads),
    )
    result = plan(config(adoptExisting=True), mixed)
    assert not result.refused, result.refusals
    assert any(
        "the runbook's MetalLB runs beside this stack's" in w
        and "--replace 'urn:pulumi:kind-dev::macula-lan::macula:lan:MetalLB$command:local:Command::"
        "metallb-runbook-handover'"
        in w
        for w in result.warnings
    )


def test_leftovers_of_an_uninstalled_metallb_need_the_opt_in():
    leftovers = [
        o for o in installs.runbook_install() if o["kind"] in ("Namespace", "CustomResourceDefinition")
    ]
    message = refusal(config(), survey(*leftovers))
    assert (
        "objects this stack would create, which exist: CustomResourceDefinition bfdprofiles.metallb.io"
        in message
    )
    result = plan(config(adoptExisting=True), survey(*leftovers))
    assert not result.refused
    assert result.summary == "no MetalLB runs (but MetalLB objects are left from an earlier install)"


@pytest.mark.parametrize(
    "values",
    [
        {"speaker": {"frr": {"enabled": False}, "tolerations": None}},
        {"speaker": {"frr": {"enabled": False}}, "controller": {}},
    ],
    ids=["a value set to null", "an empty map"],
)
def test_values_that_set_nothing_are_not_held_against_a_release(values):
    result = plan(config(adoptExisting=True), survey(*installs.chart_install(values=values)))
    assert not result.refused, result.refusals


def test_a_release_that_renames_its_objects_is_refused_once_not_twice():
    values = {**installs.STACK_VALUES, "fullnameOverride": "edge-lb"}
    result = plan(config(adoptExisting=True), survey(*installs.chart_install(values=values)))
    assert len(result.refusals) == 1
    assert "renames the chart's objects (fullnameOverride=edge-lb)" in result.refusals[0]

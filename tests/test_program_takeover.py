"""The real `__main__.py` under mocks on the clusters our users have: the runbook's, a Helm release's,
an empty one, and one this stack already manages. The program surveys each through a real kubectl."""

from __future__ import annotations

from typing import Any

import pytest

from metallb_survey import MARK_RESOURCE, MARK_STACK
from stack_config import ConfigError
from takeover_plan import TakeoverRefused
from tests import metallb_installs as installs
from tests.kube_cluster import UNREACHABLE_CONTEXT
from tests.program import PROJECT, ProgramRun, Registration, run_program, stack_file_config
from tests.upstream import requires_upstream

pytestmark = requires_upstream

PROVIDER = "pulumi:providers:kubernetes"
COMMAND = "command:local:Command"
CHART = "kubernetes:helm.sh/v4:Chart"
NAMESPACE = "kubernetes:core/v1:Namespace"
POOL = "kubernetes:metallb.io/v1beta1:IPAddressPool"
SERVICE_PATCH = "kubernetes:core/v1:ServicePatch"


def runbook_cluster() -> list[dict[str, Any]]:
    return [*installs.runbook_install(), installs.node(), *installs.bootstrap_service()]


@pytest.fixture(scope="module")
def takeover() -> ProgramRun:
    """kind-dev as committed (adoptExisting: true) on the cluster the runbook set up."""
    return run_program("kind-dev", cluster=runbook_cluster())


@pytest.fixture(scope="module")
def managed() -> ProgramRun:
    """kind-dev on the cluster after its takeover: everything carries the stack's marks."""
    return run_program("kind-dev", cluster=installs.chart_install(helm=False, stack=f"{PROJECT}/kind-dev"))


def with_config(stack: str, **values: Any) -> dict[str, Any]:
    config = stack_file_config(stack)
    config.update({f"{PROJECT}:{key}": value for key, value in values.items()})
    return config


def test_kind_dev_opts_in_and_beam_clusters_do_not():
    assert stack_file_config("kind-dev")[f"{PROJECT}:adoptExisting"] is True
    for stack in ("beam00", "beam01"):
        assert f"{PROJECT}:adoptExisting" not in stack_file_config(stack)


def test_the_takeover_turns_creates_of_existing_objects_into_forced_applies(takeover):
    provider = takeover.one(PROVIDER)
    assert provider.inputs["upsertExistingObjects"] == "true"
    # The runbook's kubectl owns fields the chart sets otherwise (the webhook's Service name, say).
    assert provider.inputs["enablePatchForce"] == "true"


def test_a_fresh_stack_keeps_creates_strict():
    run = run_program("beam00")
    assert run.one(PROVIDER).inputs["upsertExistingObjects"] == "false"
    assert run.one(PROVIDER).inputs["enablePatchForce"] == "false"
    assert run.of_type(COMMAND) == [run.one(COMMAND, "metallb-webhook-gate")]


def test_the_handover_runs_beside_the_chart_and_before_the_gate(takeover):
    namespace, chart = takeover.one(NAMESPACE), takeover.one(CHART)
    handover = takeover.one(COMMAND, "metallb-runbook-handover")
    webhook_entry = takeover.one(COMMAND, "metallb-runbook-webhook-entry")
    forget = takeover.one(COMMAND, "metallb-forget-helm-release")
    # The runbook's BGPPeer webhook entry goes before the chart's configuration is applied over it.
    assert takeover.depends_on(chart, webhook_entry)
    gate = takeover.one(COMMAND, "metallb-webhook-gate")
    assert takeover.depends_on(handover, namespace)
    # Beside, not after: the chart's speakers cannot become ready until the handover parks the runbook's.
    assert not takeover.depends_on(handover, chart)
    assert not takeover.depends_on(chart, handover)
    # Helm's records go only once the chart owns the objects.
    assert takeover.depends_on(forget, chart)
    assert takeover.depends_on(gate, handover)
    assert takeover.depends_on(gate, forget)
    for pool in takeover.of_type(POOL):
        assert takeover.depends_on(pool, handover)
    assert takeover.depends_on(takeover.one(SERVICE_PATCH), handover)


def test_the_handover_targets_the_stacks_cluster(takeover):
    create = takeover.one(COMMAND, "metallb-runbook-handover").inputs["create"]
    assert (
        "take-over-metallb.sh handover --context kind-macula-dev --namespace metallb-system "
        "--timeout 300" in create
    )
    entry = takeover.one(COMMAND, "metallb-runbook-webhook-entry").inputs["create"]
    assert "take-over-metallb.sh webhook-entry --context kind-macula-dev" in entry
    forget = takeover.one(COMMAND, "metallb-forget-helm-release").inputs["create"]
    assert (
        "take-over-metallb.sh forget-helm-release --context kind-macula-dev --namespace metallb-system "
        "--timeout 300 --release metallb" in forget
    )


def test_everything_the_program_declares_carries_the_stacks_marks(takeover):
    namespace = takeover.one(NAMESPACE)
    # The mark is the resource's own URN, so the rename guard sees a new name, parent or type.
    assert namespace.inputs["metadata"]["annotations"] == {
        MARK_STACK: f"{PROJECT}/kind-dev",
        MARK_RESOURCE: namespace.urn,
    }
    [pool] = takeover.of_type(POOL)
    assert pool.inputs["metadata"]["annotations"] == {
        MARK_STACK: f"{PROJECT}/kind-dev",
        MARK_RESOURCE: pool.urn,
    }
    assert len(takeover.one(CHART).transforms) == 1


def declared(run: ProgramRun) -> list[tuple[str, str, Any, str, list[str]]]:
    def key(resource: Registration) -> tuple[str, str, Any, str, list[str]]:
        inputs = dict(resource.inputs)
        if resource.type == PROVIDER:
            # The SDK fills in $KUBECONFIG, which names each fake cluster's own file.
            inputs.pop("kubeconfig")
        return (resource.type, resource.name, inputs, resource.parent, sorted(resource.dependencies))

    return sorted((key(r) for r in run.resources), key=lambda k: (k[0], k[1]))


def test_what_the_program_declares_does_not_depend_on_what_it_found(takeover, managed):
    """So the `up` after a takeover plans no change: the survey gates and reports, never shapes."""
    assert declared(takeover) == declared(managed)
    assert declared(run_program("kind-dev")) == declared(takeover)


def test_the_runbook_install_is_refused_before_any_resource_without_the_opt_in():
    run = ProgramRun()
    with pytest.raises(TakeoverRefused) as refused:
        run_program(
            "kind-dev", with_config("kind-dev", adoptExisting=False), run=run, cluster=runbook_cluster()
        )
    assert run.resources == []
    message = str(refused.value)
    assert "MetalLB from the runbook's native manifest: Deployment metallb-system/controller" in message
    assert "`pulumi config set --stack kind-dev adoptExisting true`" in message


def test_a_helm_release_on_a_beam_cluster_is_refused_before_any_resource():
    run = ProgramRun()
    with pytest.raises(TakeoverRefused, match="MetalLB from Helm release metallb-system/metallb"):
        run_program("beam00", run=run, cluster=installs.chart_install())
    assert run.resources == []


def test_a_helm_release_is_taken_over_on_opt_in():
    cluster = installs.chart_install(values=installs.STACK_VALUES)
    run = run_program("beam00", with_config("beam00", adoptExisting=True), cluster=cluster)
    assert run.one(PROVIDER).inputs["upsertExistingObjects"] == "true"
    assert run.one(COMMAND, "metallb-forget-helm-release")


def test_a_takeover_at_another_chart_version_is_refused():
    config = with_config("kind-dev", metallb={"chartVersion": "0.14.5"})
    with pytest.raises(TakeoverRefused, match=r'Pulumi.kind-dev.yaml: metallb.chartVersion "0.14.5" differs'):
        run_program("kind-dev", config, cluster=runbook_cluster())


def test_a_cluster_that_cannot_be_read_is_refused_not_guessed():
    run = ProgramRun()
    config = with_config("beam00", kubeContext=UNREACHABLE_CONTEXT)
    with pytest.raises(
        TakeoverRefused, match=r"cannot tell what MetalLB its cluster \(context switched-off\) runs"
    ):
        run_program("beam00", config, run=run)
    assert run.resources == []


@pytest.mark.parametrize("value", ["yes", 1, "enabled", ["true"]])
def test_a_non_boolean_opt_in_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"macula-lan:adoptExisting: expected true or false"):
        run_program("kind-dev", with_config("kind-dev", adoptExisting=value))

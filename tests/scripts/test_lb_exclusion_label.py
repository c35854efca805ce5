"""scripts/lb-exclusion-label.sh, run from the exact command text the program declares, with a real
kubectl against a fake API server on loopback: kubectl's warnings on stderr are never read as data, and
"the node is gone" (NotFound) is told apart from "the cluster could not be asked"."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from components.arp_readiness import ArpReadinessArgs, exclusion_commands
from tests import metallb_installs as installs
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster, run_local_command

LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
NODE = "macula-dev-control-plane"


def commands(context: str = "kind-macula-dev") -> tuple[str, str]:
    args = ArpReadinessArgs(
        kube_context=context,
        kubeconfig=None,
        clear_lb_exclusion=[NODE],
        strict_arp=False,
        cluster_identity="uid",
    )
    return exclusion_commands(args, NODE)


def run(command: str, previous_stdout: str | None = None) -> subprocess.CompletedProcess[str]:
    # pulumi-command hands a command the output of its previous run in PULUMI_COMMAND_STDOUT.
    env = {} if previous_stdout is None else {"PULUMI_COMMAND_STDOUT": previous_stdout}
    return run_local_command(command, env=env, timeout=60)


def node(labels: dict[str, str]) -> dict[str, Any]:
    found = installs.node(NODE)
    found["metadata"]["labels"] = {"kubernetes.io/hostname": NODE, **labels}
    return found


def labels(api: FakeKubeApi) -> dict[str, str]:
    return dict(api.get("v1", "Node", NODE)["metadata"]["labels"])


@pytest.fixture(params=[False, True], ids=["healthy", "broken aggregated API"])
def api(request) -> FakeKubeApi:
    """With a broken aggregated API kubectl writes warnings to stderr on every call."""
    fake = FakeKubeApi([node({LABEL: ""})])
    fake.broken_discovery = request.param
    return fake


def test_remove_takes_kubeadms_empty_label_off_and_says_so(api):
    create, _ = commands()
    with fake_cluster(api=api):
        result = run(create)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "removed:\n"
    assert labels(api) == {"kubernetes.io/hostname": NODE}


def test_remove_on_a_node_without_the_label_changes_nothing(api):
    api.update("v1", "Node", NODE, None, {"metadata": {"labels": {LABEL: None}}})
    create, _ = commands()
    with fake_cluster(api=api):
        result = run(create)
    assert (result.returncode, result.stdout) == (0, "absent\n")
    assert not [method for method, _ in api.requests if method == "PATCH"]


def test_destroy_puts_back_exactly_what_was_removed(api):
    api.update("v1", "Node", NODE, None, {"metadata": {"labels": {LABEL: "true"}}})
    create, delete = commands()
    with fake_cluster(api=api):
        removed = run(create).stdout.strip()
        result = run(delete, previous_stdout=removed)
    assert removed == "removed:true"
    assert result.returncode == 0, result.stderr
    assert (result.stdout, labels(api)[LABEL]) == ("restored\n", "true")


def test_destroy_leaves_a_label_it_never_removed_alone(api):
    api.update("v1", "Node", NODE, None, {"metadata": {"labels": {LABEL: None}}})
    _, delete = commands()
    with fake_cluster(api=api):
        result = run(delete, previous_stdout="absent")
    assert result.returncode == 0
    assert LABEL not in labels(api)


def test_a_rerun_remembers_a_label_an_earlier_run_removed(api):
    """pulumi-command re-runs create on any input change and keeps only the latest output."""
    create, delete = commands()
    with fake_cluster(api=api):
        first = run(create).stdout.strip()
        rerun = run(create, previous_stdout=first).stdout.strip()
        run(delete, previous_stdout=rerun)
    assert (first, rerun) == ("removed:", "removed:")
    assert labels(api)[LABEL] == ""


def test_destroy_on_a_node_that_is_gone_succeeds():
    _, delete = commands()
    with fake_cluster([installs.node("another-node")]):
        result = run(delete, previous_stdout="removed:")
    assert result.returncode == 0
    assert f"node {NODE} is gone from context kind-macula-dev; nothing to restore" in result.stderr


def test_destroy_that_cannot_reach_the_cluster_fails_so_the_record_is_kept():
    _, delete = commands(UNREACHABLE_CONTEXT)
    with fake_cluster():
        result = run(delete, previous_stdout="removed:")
    assert result.returncode == 1
    assert "cannot reach context switched-off to put" in result.stderr
    assert result.stdout == ""


def test_destroy_that_may_not_read_the_node_fails_so_the_record_is_kept(api):
    api.forbid("GET", "nodes")
    _, delete = commands()
    with fake_cluster(api=api):
        result = run(delete, previous_stdout="removed:")
    assert result.returncode == 1
    assert "run destroy again once it answers" in result.stderr


def test_remove_on_a_missing_node_fails_naming_it():
    create, _ = commands()
    with fake_cluster([installs.node("another-node")]):
        result = run(create)
    assert result.returncode == 1
    assert f"node {NODE} does not exist in context kind-macula-dev" in result.stderr


def test_remove_that_cannot_read_the_node_fails_and_changes_nothing(api):
    api.forbid("GET", "nodes")
    create, _ = commands()
    with fake_cluster(api=api):
        result = run(create)
    assert result.returncode == 1
    assert f"cannot read node {NODE} in context kind-macula-dev" in result.stderr
    assert labels(api)[LABEL] == ""


def test_remove_whose_label_change_is_denied_fails_and_says_so(api):
    api.forbid("PATCH", "nodes")
    create, _ = commands()
    with fake_cluster(api=api):
        result = run(create)
    assert result.returncode == 1
    assert f"could not take {LABEL} off {NODE}" in result.stderr
    assert result.stdout == ""


def test_help_works_as_pulumi_runs_the_script():
    create, _ = commands()
    result = run(f"{create} --help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: lb-exclusion-label.sh remove  --context CONTEXT --node NODE")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("--node --context", "--node needs a node name"),
        ("--context ''", "--context needs a context name"),
        ("restore", "one action only, got 'remove' and 'restore'"),
        ("--bogus", "unknown argument: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(extra, message):
    create, _ = commands()
    result = run(f"{create} {extra}")
    assert result.returncode == 2
    assert message in result.stderr

"""`python -m tools.survey`: the read-only report before a first `up`, against a real kubectl and a fake
API server holding our users' clusters."""

from __future__ import annotations

import pytest

from tests import metallb_installs as installs
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import fake_cluster
from tests.upstream import requires_upstream
from tools import survey

pytestmark = requires_upstream


def test_the_runbook_cluster_would_be_taken_over(capsys):
    api = FakeKubeApi([*installs.runbook_install(), installs.foreign_configmap()])
    with fake_cluster(api=api):
        code = survey.main(["--stack", "kind-dev"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "survey stack kind-dev: context kind-macula-dev, read-only"
    assert out[1] == (
        "cluster kind-macula-dev: MetalLB 0.14.3 from the runbook's native manifest "
        "(Deployment metallb-system/controller, DaemonSet metallb-system/speaker)"
    )
    assert out[2].startswith("take over (the same name in the chart or the stack file): ConfigMap")
    assert out[3].startswith(
        "remove (the runbook's native-manifest objects): Deployment metallb-system/controller"
    )
    assert "keep: ConfigMap metallb-system/team-notes (not MetalLB's)" in out
    assert out[-1] == "`pulumi up --stack kind-dev` would take this MetalLB over as above (adoptExisting)"
    assert {method for method, _ in api.requests} == {"GET"}


def test_a_helm_release_on_beam00_would_be_refused(capsys):
    with fake_cluster(installs.chart_install()):
        code = survey.main(["--stack", "beam00"])
    out = capsys.readouterr().out
    assert code == 1
    assert "refused: the cluster holds a MetalLB this stack does not manage" in out
    assert "`pulumi config set --stack beam00 adoptExisting true`" in out
    assert out.splitlines()[-1] == "`pulumi up --stack beam00` would refuse this cluster and change nothing"


def test_an_empty_cluster_would_go_ahead(capsys):
    with fake_cluster([installs.node("beam00-node-1")]):
        code = survey.main(["--stack", "beam01"])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "cluster beam01: no MetalLB runs",
        "`pulumi up --stack beam01` would go ahead: nothing to take over",
    ]


def test_a_cluster_that_cannot_be_read_is_exit_2(capsys):
    api = FakeKubeApi(installs.runbook_install())
    api.forbid("LIST", "secrets", "metallb-system")
    with fake_cluster(api=api):
        code = survey.main(["--stack", "kind-dev"])
    assert code == 2
    assert "survey: cannot read the cluster (context kind-macula-dev)" in capsys.readouterr().err


def test_an_unknown_stack_is_exit_2(capsys):
    assert survey.main(["--stack", "beam09"]) == 2
    assert "no stack 'beam09': there is no Pulumi.beam09.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", ["0", "nan", "soon"])
def test_a_bad_timeout_is_exit_2(timeout):
    with pytest.raises(SystemExit) as exited:
        survey.main(["--stack", "kind-dev", "--kubectl-timeout", timeout])
    assert exited.value.code == 2

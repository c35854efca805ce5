"""scripts/forget-helm-release.sh, run as Pulumi runs it, with a real kubectl against a fake API server
that holds a Helm release of MetalLB (and one of something else)."""

from __future__ import annotations

import subprocess

import pytest

from components.metallb import MetalLBArgs, forget_helm_release_command
from stack_config import ChartConfig
from tests import metallb_installs as installs
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import fake_cluster
from tests.upstream import requires_upstream

pytestmark = requires_upstream

NS = "metallb-system"


def forget(*extra: str) -> subprocess.CompletedProcess[str]:
    command = forget_helm_release_command(
        MetalLBArgs(
            chart=ChartConfig(),
            kube_context="beam00",
            kubeconfig=None,
            stack_mark="macula-lan/beam00",
            adopt_existing=True,
        )
    )
    return subprocess.run(
        ["/bin/sh", "-c", " ".join([command, *extra])],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def helm_cluster() -> FakeKubeApi:
    other = installs.helm_record("ingress", 4)
    return FakeKubeApi([*installs.chart_install(), other])


def test_removes_the_release_records_and_nothing_else():
    api = helm_cluster()
    objects_before = {key for key in api.objects if "sh.helm.release" not in key[2]}
    with fake_cluster(api=api):
        result = forget()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "forgot secret/sh.helm.release.v1.metallb.v1",
        "forgot secret/sh.helm.release.v1.metallb.v2",
        "forgot Helm release metallb in metallb-system: 2 records removed; its objects stay, now the stack's",
    ]
    assert api.names("Secret", NS) >= {"sh.helm.release.v1.ingress.v4", "webhook-server-cert"}
    assert not {name for name in api.names("Secret", NS) if name.startswith("sh.helm.release.v1.metallb")}
    assert {key for key in api.objects if "sh.helm.release" not in key[2]} == objects_before


def test_records_in_configmaps_go_too():
    record = installs.helm_record("metallb", 1)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**record["metadata"]},
        "data": {"release": "eA=="},
    }
    api = FakeKubeApi([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, configmap])
    with fake_cluster(api=api):
        result = forget()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "forgot configmap/sh.helm.release.v1.metallb.v1"
    assert api.names("ConfigMap", NS) == set()


def test_without_a_release_there_is_nothing_to_forget():
    with fake_cluster(installs.runbook_install()):
        result = forget()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no Helm release metallb in metallb-system (context beam00): nothing to forget\n"


def test_records_that_cannot_be_listed_fail_the_step():
    api = helm_cluster()
    api.forbid("LIST", "secrets", NS)
    with fake_cluster(api=api):
        result = forget()
    assert result.returncode == 1
    assert "could not look for the secrets holding Helm's records of release metallb" in result.stderr
    assert result.stdout == ""


def test_help_works_as_pulumi_runs_the_script():
    result = forget("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: forget-helm-release.sh --context CONTEXT")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--release", "Bad_Name"), "--release must be a Helm release name, got 'Bad_Name'"),
        (("--request-timeout", "0"), "--request-timeout must be a whole number of seconds from 1 to 300"),
        (("--namespace", "-n"), "--namespace needs a namespace name"),
        (("extra",), "unknown argument: extra"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = forget(*args)
    assert result.returncode == 2
    assert message in result.stderr

"""scripts/kube-proxy-strict-arp.sh, run from the exact command text the program declares, with a real
kubectl against a fake API server that holds kubeadm's kube-proxy ConfigMap, DaemonSet and pod, and plays
the DaemonSet controller when kube-proxy is restarted."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from components.arp_readiness import ArpReadinessArgs, strict_arp_command
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster, run_local_command

NS = "kube-system"
CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
ipvs:
  excludeCIDRs: null
  strictARP: {strict}
  syncPeriod: 0s
kind: KubeProxyConfiguration
mode: "ipvs"
"""
# When kubeadm wrote the ConfigMap, and when the kube-proxy pod started: after it.
CONFIG_WRITTEN = "2026-12-01T10:00:00Z"
POD_STARTED = "2026-12-01T11:00:00Z"


def kube_proxy(strict: str = "false", pod_started: str = POD_STARTED) -> FakeKubeApi:
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "kube-proxy",
                "namespace": NS,
                "managedFields": [{"manager": "kubeadm", "operation": "Update", "time": CONFIG_WRITTEN}],
            },
            "data": {"config.conf": CONFIG.format(strict=strict)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "namespace": NS},
            "spec": {"template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}}, "spec": {}}},
            "status": {
                "observedGeneration": 1,
                "desiredNumberScheduled": 1,
                "updatedNumberScheduled": 1,
                "numberAvailable": 1,
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "kube-proxy-abcde",
                "namespace": NS,
                "labels": {"k8s-app": "kube-proxy"},
                "creationTimestamp": pod_started,
            },
        },
    ]
    api = FakeKubeApi(objects)
    api.on_change.append(play_the_daemonset_controller)
    return api


def play_the_daemonset_controller(api: FakeKubeApi, method: str, before: dict[str, Any]) -> None:
    """A restart replaces kube-proxy's pod with one started now, unless the test holds the rollout."""
    if (before["kind"], method) != ("DaemonSet", "PATCH") or getattr(api, "hold_rollout", False):
        return
    generation = before["metadata"]["generation"] + 1
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(api.clock() + 1))
    api.update("apps/v1", "DaemonSet", "kube-proxy", NS, {"metadata": {"generation": generation}})
    api.update("apps/v1", "DaemonSet", "kube-proxy", NS, {"status": {"observedGeneration": generation}})
    api.update("v1", "Pod", "kube-proxy-abcde", NS, {"metadata": {"creationTimestamp": now}})


def config(api: FakeKubeApi) -> str:
    return str(api.get("v1", "ConfigMap", "kube-proxy", NS)["data"]["config.conf"])


def writes(api: FakeKubeApi) -> list[tuple[str, str]]:
    return [(method, path) for method, path in api.requests if method in ("PUT", "PATCH", "DELETE")]


def run(*extra: str, context: str = "kind-macula-dev") -> subprocess.CompletedProcess[str]:
    command = strict_arp_command(
        ArpReadinessArgs(
            kube_context=context,
            kubeconfig=None,
            clear_lb_exclusion=[],
            strict_arp=True,
            cluster_identity="uid",
        )
    )
    return run_local_command(command, "--interval", "1", *extra)


@pytest.mark.parametrize("broken_discovery", [False, True], ids=["healthy", "broken aggregated API"])
def test_strict_arp_is_turned_on_and_kube_proxy_restarted(broken_discovery):
    api = kube_proxy()
    api.broken_discovery = broken_discovery
    with fake_cluster(api=api):
        result = run()
    assert result.returncode == 0, result.stderr
    # stdout is the one line of data, whatever kubectl wrote to stderr.
    assert result.stdout == "strictARP turned on and kube-proxy restarted (mode: ipvs)\n"
    assert "strictARP: true" in config(api)
    assert writes(api) == [
        ("PUT", f"/api/v1/namespaces/{NS}/configmaps/kube-proxy"),
        ("PATCH", f"/apis/apps/v1/namespaces/{NS}/daemonsets/kube-proxy"),
    ]


def test_strict_arp_already_on_and_running_changes_and_restarts_nothing():
    api = kube_proxy(strict="true")
    with fake_cluster(api=api):
        result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("strictARP is on and every kube-proxy pod started after it")
    assert writes(api) == []


def test_a_half_applied_run_is_finished_by_restarting_kube_proxy():
    """strictARP on in the ConfigMap, but kube-proxy started before that change: it never read it."""
    api = kube_proxy(strict="true", pod_started="2026-12-01T09:00:00Z")
    with fake_cluster(api=api):
        result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "strictARP was on, but kube-proxy had not restarted since: restarted it (mode: ipvs)\n"
    )
    assert writes(api) == [("PATCH", f"/apis/apps/v1/namespaces/{NS}/daemonsets/kube-proxy")]


def test_a_second_run_after_turning_it_on_does_nothing():
    api = kube_proxy()
    with fake_cluster(api=api):
        assert run().returncode == 0
        before = len(writes(api))
        again = run()
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("strictARP is on and every kube-proxy pod started after it")
    assert len(writes(api)) == before


def test_a_restart_that_cannot_start_turns_strict_arp_off_again():
    api = kube_proxy()
    api.forbid("PATCH", "daemonsets", NS)
    with fake_cluster(api=api):
        result = run()
    assert result.returncode == 1
    assert "could not restart kube-proxy" in result.stderr
    assert "strictARP was turned off again; nothing changed" in result.stderr
    assert "strictARP: false" in config(api)


def test_a_rollout_that_does_not_finish_fails_with_a_bound():
    api = kube_proxy()
    api.hold_rollout = True  # type: ignore[attr-defined]
    api.update("apps/v1", "DaemonSet", "kube-proxy", NS, {"status": {"numberAvailable": 0}})
    with fake_cluster(api=api):
        result = run("--timeout", "10")
    assert result.returncode == 1
    assert "kube-proxy did not finish restarting within 10s (strictARP is on)" in result.stderr


def test_without_a_kubeadm_kube_proxy_it_fails_clearly():
    with fake_cluster():
        result = run()
    assert result.returncode == 1
    assert "there is no ConfigMap kube-system/kube-proxy in context kind-macula-dev" in result.stderr
    assert "unset strictArp" in result.stderr


def test_without_the_setting_it_fails_clearly():
    api = kube_proxy()
    api.update("v1", "ConfigMap", "kube-proxy", NS, {"data": {"config.conf": "mode: iptables\n"}})
    with fake_cluster(api=api):
        result = run()
    assert result.returncode == 1
    assert "no 'strictARP:' setting" in result.stderr
    assert not [write for write in writes(api) if write[0] == "PUT"]


def test_an_unreachable_cluster_is_could_not_ask():
    with fake_cluster():
        result = run(context=UNREACHABLE_CONTEXT)
    assert result.returncode == 1
    assert "cannot read ConfigMap kube-system/kube-proxy in context switched-off" in result.stderr


def test_help_works_as_pulumi_runs_the_script():
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: kube-proxy-strict-arp.sh --context CONTEXT")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--timeout", "5"), "--timeout must be from 10 to 3600, got '5'"),
        (("--interval", "0"), "--interval must be from 1 to 60, got '0'"),
        (("--request-timeout", "x"), "--request-timeout must be a whole number of seconds, got 'x'"),
        (("--context", "-n"), "--context needs a context name"),
        (("--bogus",), "unknown argument: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr

"""scripts/wait-for-metallb-webhook.sh, the webhook gate, run from the exact command text the program
declares, with a real kubectl against a fake API server whose MetalLB webhook refuses connections a set
number of times before it serves."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from components.metallb import MetalLBArgs, webhook_gate_command
from stack_config import ChartConfig
from tests import metallb_installs as installs
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster, kubectl_minor_version, run_local_command
from tests.upstream import requires_upstream

pytestmark = requires_upstream


@pytest.fixture(autouse=True)
def _kubectl_that_dry_runs_without_openapi() -> None:
    if kubectl_minor_version() < 24:
        pytest.skip(
            "this kubectl checks a server dry run against the cluster's OpenAPI document, which the fake "
            "API server does not serve (kubectl 1.32 does not check)"
        )


PROBE = "/apis/metallb.io/v1beta1/namespaces/metallb-system/l2advertisements"


def gate(*extra: str, context: str = "kind-macula-dev", kubeconfig: str | None = None, timeout: int = 20):
    command = webhook_gate_command(
        MetalLBArgs(
            chart=ChartConfig(webhook_timeout_seconds=timeout),
            kube_context=context,
            kubeconfig=kubeconfig,
            stack_mark="macula-lan/kind-dev",
        )
    )
    return run_local_command(command, "--interval", "1", *extra)


def metallb(failures: int = 0) -> FakeKubeApi:
    api = FakeKubeApi(installs.crds())
    api.webhook_failures = failures
    return api


def probes(api: FakeKubeApi) -> int:
    return sum(1 for method, path in api.requests if (method, path) == ("POST", PROBE))


def test_gate_waits_until_the_webhook_answers():
    api = metallb(failures=3)
    with fake_cluster(api=api):
        result = gate()
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == "MetalLB webhook in metallb-system is serving (context kind-macula-dev, attempt 4)\n"
    )
    assert probes(api) == 4
    # A dry run: nothing was stored.
    assert api.names("L2Advertisement", "metallb-system") == set()


def test_gate_ignores_kubectls_warnings_about_a_broken_aggregated_api():
    api = metallb(failures=1)
    api.broken_discovery = True
    with fake_cluster(api=api):
        result = gate()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MetalLB webhook in metallb-system is serving")


def test_gate_passes_the_stack_kubeconfig(tmp_path: Path):
    api = metallb()
    with fake_cluster(api=api) as cluster:
        spaced = tmp_path / "my clusters.yaml"
        spaced.write_text(cluster.kubeconfig.read_text())
        env_kubeconfig = os.environ.pop("KUBECONFIG")
        try:
            result = gate(kubeconfig=str(spaced))
        finally:
            os.environ["KUBECONFIG"] = env_kubeconfig
    assert result.returncode == 0, result.stderr


def test_gate_gives_up_at_its_deadline_with_the_last_error():
    api = metallb(failures=10**6)
    started = time.monotonic()
    with fake_cluster(api=api):
        result = gate(timeout=10)
    assert result.returncode == 1
    assert time.monotonic() - started < 30
    assert "did not answer within 10s" in result.stderr
    assert "connection refused" in result.stderr
    assert "metallb.webhookTimeoutSeconds" in result.stderr


def test_gate_without_kubectl_says_so(tmp_path: Path):
    command = webhook_gate_command(
        MetalLBArgs(chart=ChartConfig(), kube_context="c", kubeconfig=None, stack_mark="p/s")
    )
    (tmp_path / "bash").symlink_to("/bin/bash")
    result = subprocess.run(
        ["/bin/sh", "-c", command], env={"PATH": str(tmp_path)}, check=False, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "kubectl is not on PATH" in result.stderr


def test_gate_fails_at_once_on_an_unknown_context():
    api = metallb(failures=10**6)
    with fake_cluster(api=api):
        result = gate(context="beam09")
    assert result.returncode == 1
    assert "kubectl cannot use context beam09" in result.stderr
    assert probes(api) == 0


def test_gate_fails_at_once_on_a_kubeconfig_it_cannot_read(tmp_path: Path):
    unreadable = tmp_path / "kubeconfig"
    unreadable.write_text("{}")
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything: make it a directory instead
        unreadable.chmod(0o600)
        unreadable.unlink()
        unreadable.mkdir()
    with fake_cluster():
        result = gate(kubeconfig=str(unreadable))
    assert result.returncode == 1
    assert "kubectl cannot use context kind-macula-dev" in result.stderr


def test_gate_fails_at_once_when_the_credential_plugin_is_missing(tmp_path: Path):
    with fake_cluster() as cluster:
        config = json.loads(cluster.kubeconfig.read_text())
        config["users"][0]["user"] = {
            "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kubelogin-not-installed"}
        }
        plugin_config = tmp_path / "kubeconfig"
        plugin_config.write_text(json.dumps(config))
        result = gate(kubeconfig=str(plugin_config))
    assert result.returncode == 1
    assert "credential plugin 'kubelogin-not-installed', which is not installed here" in result.stderr


def test_gate_fails_at_once_without_permission_to_create_advertisements():
    api = metallb()
    api.forbid("POST", "l2advertisements")
    with fake_cluster(api=api):
        result = gate()
    assert result.returncode == 1
    assert "may not create L2Advertisements in metallb-system" in result.stderr
    assert probes(api) == 0


def test_gate_keeps_trying_a_cluster_that_does_not_answer_and_bounds_each_call():
    started = time.monotonic()
    with fake_cluster():
        result = gate(context=UNREACHABLE_CONTEXT, timeout=10)
    assert result.returncode == 1
    assert "did not answer within 10s" in result.stderr
    assert time.monotonic() - started < 40


def test_help_works_as_pulumi_runs_the_script():
    result = gate("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: wait-for-metallb-webhook.sh --context CONTEXT")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--interval", "0"), "--interval must be from 1 to 60, got '0'"),
        (("--timeout", "1e3"), "--timeout must be a whole number of seconds, got '1e3'"),
        (("--request-timeout", "301"), "--request-timeout must be from 1 to 300, got '301'"),
        (("--context", "--kubeconfig"), "--context needs a context name"),
        (("--bogus",), "unknown argument: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = gate(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_leading_zero_is_decimal_not_octal():
    with fake_cluster(api=metallb()):
        result = gate("--timeout", "010", "--interval", "08")
    assert result.returncode == 0, result.stderr

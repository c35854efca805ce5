"""The MetalLB component's chart values, its drift transform and its webhook gate script."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pulumi
import pytest

from components.metallb import (
    MetalLBArgs,
    chart_children_transform,
    chart_values,
    webhook_gate_command,
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


WEBHOOK_DOWN = (
    'Error from server (InternalError): error when creating "STDIN": Internal error occurred: '
    'failed calling webhook "l2advertisementvalidationwebhook.metallb.io": failed to call webhook: '
    'Post "https://metallb-webhook-service.metallb-system.svc:443/validate-metallb-io-v1beta1-'
    'l2advertisement?timeout=10s": dial tcp 10.96.12.3:443: connect: connection refused'
)

FAKE_KUBECTL = r"""#!/usr/bin/env bash
# Stands in for kubectl: no cluster can run here. Fails the first $FAIL_TIMES calls like a webhook
# that is not serving yet, then answers like an API server admitting a dry run.
printf '%s\n' "$*" >> "$CALLS"
cat > "$CALLS.stdin"
calls=$(wc -l < "$CALLS")
if (( calls <= FAIL_TIMES )); then
  echo "$FAILURE" >&2
  exit 1
fi
echo "l2advertisement.metallb.io/pulumi-webhook-readiness-probe created (server dry run)"
"""


@pytest.fixture
def fake_kubectl(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls"

    def run(fail_times: int, timeout: int = 60, failure: str = WEBHOOK_DOWN, **args):
        command = webhook_gate_command(
            MetalLBArgs(
                chart=ChartConfig(webhook_timeout_seconds=timeout),
                kube_context="kind-macula-dev",
                kubeconfig=args.pop("kubeconfig", None),
                stack_mark="macula-lan/kind-dev",
                **args,
            )
        )
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "CALLS": str(calls),
            "FAIL_TIMES": str(fail_times),
            "FAILURE": failure,
        }
        # The very text Pulumi hands to local.Command, which runs it under /bin/sh -c; the polling
        # interval is shortened so the test does not sleep.
        result = subprocess.run(
            ["/bin/sh", "-c", f"{command} --interval 0"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        lines = calls.read_text().splitlines() if calls.exists() else []
        return result, lines, (Path(f"{calls}.stdin").read_text() if lines else "")

    return run


def test_gate_waits_until_the_webhook_answers(fake_kubectl):
    result, calls, probe = fake_kubectl(fail_times=3)
    assert result.returncode == 0, result.stderr
    assert len(calls) == 4
    assert calls[0].startswith("--context kind-macula-dev create --dry-run=server")
    assert "kind: L2Advertisement" in probe
    assert "namespace: metallb-system" in probe
    assert "serving" in result.stdout


def test_gate_passes_the_stack_kubeconfig(fake_kubectl):
    result, calls, _ = fake_kubectl(fail_times=0, kubeconfig="/home/me/my clusters.yaml")
    assert result.returncode == 0, result.stderr
    assert calls == [
        "--context kind-macula-dev --kubeconfig /home/me/my clusters.yaml "
        "create --dry-run=server -o name -f -"
    ]


def test_gate_counts_a_denial_as_a_serving_webhook(fake_kubectl):
    denial = 'admission webhook "l2advertisementvalidationwebhook.metallb.io" denied the request: x'
    result, calls, _ = fake_kubectl(fail_times=99, failure=denial)
    assert result.returncode == 0
    assert len(calls) == 1


def test_gate_gives_up_at_its_deadline_with_the_last_error(fake_kubectl):
    started = time.monotonic()
    result, calls, _ = fake_kubectl(fail_times=10**6, timeout=2)
    assert result.returncode == 1
    assert time.monotonic() - started < 15
    assert len(calls) >= 2
    assert "did not answer within 2s" in result.stderr
    assert "connection refused" in result.stderr
    assert "metallb.webhookTimeoutSeconds" in result.stderr


def test_gate_without_kubectl_says_so(tmp_path: Path):
    command = webhook_gate_command(
        MetalLBArgs(chart=ChartConfig(), kube_context="c", kubeconfig=None, stack_mark="p/s")
    )
    (tmp_path / "bash").symlink_to(shutil.which("bash") or "/bin/bash")
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        env={"PATH": str(tmp_path)},
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "kubectl is not on PATH" in result.stderr


@pytest.mark.parametrize(
    "failure",
    [
        'error: context "kind-macula-dev" does not exist',
        "error: stat /home/me/kubeconfig: no such file or directory",
        'Error from server (Forbidden): l2advertisements.metallb.io is forbidden: User "me" cannot create',
    ],
)
def test_gate_fails_at_once_when_kubectl_cannot_use_the_context(fake_kubectl, failure: str):
    result, calls, _ = fake_kubectl(fail_times=10**6, failure=failure)
    assert result.returncode == 1
    assert len(calls) == 1, "waiting cannot fix a missing context, file or permission"
    assert "kubectl cannot use context kind-macula-dev" in result.stderr

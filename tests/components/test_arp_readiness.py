"""The strictARP script behind ArpReadiness, run from the exact command text the program declares.

A stand-in `kubectl` keeps the kube-proxy ConfigMap in a file and answers the handful of calls the
script makes the way kubectl does. (The exclusion-label script runs against a real kubectl and a fake
API server: tests/scripts/test_lb_exclusion_label.py.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.arp_readiness import ArpReadinessArgs, strict_arp_command

NODE = "macula-dev-control-plane"

FAKE_KUBECTL = r"""#!/usr/bin/env python3
import os, sys
state_dir = os.environ["FAKE_CLUSTER"]
args = sys.argv[1:]
with open(os.path.join(state_dir, "calls"), "a") as calls:
    calls.write(" ".join(args) + "\n")
assert args[:2] == ["--context", "kind-macula-dev"], args
args = args[2:]
if args[:2] == ["-n", "kube-system"]:
    args = args[2:]
configmap_file = os.path.join(state_dir, "kube-proxy.yaml")

if args[:3] == ["get", "configmap", "kube-proxy"]:
    if not os.path.exists(configmap_file):
        sys.exit('Error from server (NotFound): configmaps "kube-proxy" not found')
    print(open(configmap_file).read(), end="")
elif args[:3] == ["replace", "-f", "-"]:
    open(configmap_file, "w").write(sys.stdin.read())
    print("configmap/kube-proxy replaced")
elif args == ["rollout", "restart", "daemonset/kube-proxy"]:
    if os.environ.get("FAIL_ROLLOUT"):
        sys.exit('error: failed to patch: daemonsets.apps "kube-proxy" is forbidden')
    print("daemonset.apps/kube-proxy restarted")
else:
    sys.exit(f"fake kubectl: unexpected call {args}")
"""

KUBE_PROXY_CONFIGMAP = """apiVersion: v1
data:
  config.conf: |-
    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    ipvs:
      excludeCIDRs: null
      strictARP: false
      syncPeriod: 0s
    kind: KubeProxyConfiguration
    mode: "ipvs"
kind: ConfigMap
metadata:
  name: kube-proxy
  namespace: kube-system
  resourceVersion: "231"
"""


class FakeCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        bin_dir = root / "bin"
        bin_dir.mkdir()
        kubectl = bin_dir / "kubectl"
        kubectl.write_text(FAKE_KUBECTL)
        kubectl.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_CLUSTER": str(root)}
        self.args = ArpReadinessArgs(
            kube_context="kind-macula-dev",
            kubeconfig=None,
            clear_lb_exclusion=[NODE],
            strict_arp=True,
            cluster_identity="uid",
        )

    def calls(self) -> list[str]:
        path = self.root / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def run(self, command: str, previous_stdout: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if previous_stdout is not None:
            env["PULUMI_COMMAND_STDOUT"] = previous_stdout
        # pulumi-command's local provider runs the text under /bin/sh -c.
        return subprocess.run(
            ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=30, check=False
        )


@pytest.fixture
def cluster(tmp_path: Path) -> FakeCluster:
    return FakeCluster(tmp_path)


def test_strict_arp_is_turned_on_and_kube_proxy_restarted(cluster):
    (cluster.root / "kube-proxy.yaml").write_text(KUBE_PROXY_CONFIGMAP)
    result = cluster.run(strict_arp_command(cluster.args))
    assert result.returncode == 0, result.stderr
    updated = (cluster.root / "kube-proxy.yaml").read_text()
    assert "      strictARP: true\n" in updated
    assert updated.replace("strictARP: true", "strictARP: false") == KUBE_PROXY_CONFIGMAP
    assert "rollout restart daemonset/kube-proxy" in cluster.calls()[-1]
    assert "mode: ipvs" in result.stdout


def test_strict_arp_already_on_changes_and_restarts_nothing(cluster):
    (cluster.root / "kube-proxy.yaml").write_text(
        KUBE_PROXY_CONFIGMAP.replace("strictARP: false", "strictARP: true")
    )
    result = cluster.run(strict_arp_command(cluster.args))
    assert result.returncode == 0
    assert "already on" in result.stdout
    assert not [call for call in cluster.calls() if "replace" in call or "rollout" in call]


def test_strict_arp_without_a_kubeadm_kube_proxy_fails_clearly(cluster):
    result = cluster.run(strict_arp_command(cluster.args))
    assert result.returncode == 1
    assert "cannot read ConfigMap kube-system/kube-proxy in context kind-macula-dev" in result.stderr
    assert "unset strictArp" in result.stderr


def test_strict_arp_without_the_setting_fails_clearly(cluster):
    (cluster.root / "kube-proxy.yaml").write_text(
        KUBE_PROXY_CONFIGMAP.replace("      strictARP: false\n", "")
    )
    result = cluster.run(strict_arp_command(cluster.args))
    assert result.returncode == 2
    assert "no 'strictARP:' setting" in result.stderr


def test_strict_arp_is_turned_off_again_when_kube_proxy_cannot_restart(cluster):
    (cluster.root / "kube-proxy.yaml").write_text(KUBE_PROXY_CONFIGMAP)
    cluster.env["FAIL_ROLLOUT"] = "1"
    result = cluster.run(strict_arp_command(cluster.args))
    assert result.returncode == 1
    assert "turned off again" in result.stderr
    assert (cluster.root / "kube-proxy.yaml").read_text() == KUBE_PROXY_CONFIGMAP
    del cluster.env["FAIL_ROLLOUT"]
    assert cluster.run(strict_arp_command(cluster.args)).returncode == 0, "the next run does both steps"
    assert "strictARP: true" in (cluster.root / "kube-proxy.yaml").read_text()

"""tools.verify.fleet_status: every stack in one table (python -m tools.verify --all), with a stand-in
kubectl that answers from the recorded API responses for every context."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.netns import network_namespace
from tests.program import PROJECT_DIR
from tests.tools.verify.kind_dev import recorded
from tests.tools.verify.standin import HEALTHY, run_verify, serve, serve_refusal
from tools.verify import fleet_status
from tools.verify.run import Options


def test_the_version_running_is_the_controller_images_tag():
    assert fleet_status.metallb_version(recorded("deployment-metallb-controller.ready.json")) == "v0.14.3"
    assert fleet_status.metallb_version(None) is None


def test_all_prints_one_row_per_stack_with_version_pool_usage_pinned_ips_and_verdicts(tmp_path: Path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    serve(kubectl_dir, {**HEALTHY, "services": "services.json"})

    # In a namespace of its own: kind-dev's UDP probe goes to its LAN address, which must not leave this host.
    with network_namespace() as namespace:
        result = run_verify(
            kubectl_dir, "--all", "--resolver", "127.0.0.1:9", "--timeout", "0.5", namespace=namespace
        )

    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "stack",
        "context",
        "metallb",
        "pools",
        "(in",
        "use/total)",
        "pinned",
        "result",
        "checks",
    ]
    kind_dev = next(line for line in lines if line.startswith("kind-dev"))
    assert "kind-macula-dev" in kind_dev and "v0.14.3" in kind_dev
    assert "lan-pool 1/11" in kind_dev and "192.168.129.51" in kind_dev
    beam00 = next(line for line in lines if line.startswith("beam00"))
    # The recorded pool is kind-dev's, so beam00's pools check fails; and its range holds no Service.
    assert "lan-pool 0/11" in beam00
    # Every verdict: the count of ok, then each other check's name by its verdict.
    assert beam00.endswith("ok 5; FAIL pools; skip lb-exclusion, strict-arp, service, dns, udp, arp")
    assert result.returncode == 2  # kind-dev's resolver does not answer: a check could not be made


def test_an_unreachable_cluster_is_one_error_row_and_json_says_the_same(tmp_path: Path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    refused = serve_refusal(kubectl_dir)

    # In a namespace of its own, should verify ever go past the error row to kind-dev's probes.
    with network_namespace() as namespace:
        table = run_verify(kubectl_dir, "--all", namespace=namespace)
        data = json.loads(run_verify(kubectl_dir, "--all", "--json", namespace=namespace).stdout)

    assert table.returncode == 2
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == ["beam00", "beam01", "kind-dev"]
    assert all(f"cannot read the cluster: {refused}" in line for line in table.stdout.splitlines()[1:])
    assert [(row["stack"], row["exit"], row["checks"]) for row in data] == [
        ("beam00", 2, []),
        ("beam01", 2, []),
        ("kind-dev", 2, []),
    ]
    assert data[0]["error"] == f"cannot read the cluster: {refused}"


def test_json_goes_with_all_only(tmp_path: Path):
    result = run_verify(tmp_path, "--stack", "beam00", "--json")
    assert result.returncode == 2
    assert "--json goes with --all" in result.stderr


def test_a_stack_verify_fails_on_is_its_own_error_row(tmp_path: Path, monkeypatch):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    serve(kubectl_dir, {**HEALTHY, "services": "services.json"})
    monkeypatch.setenv("PATH", f"{kubectl_dir}:{os.environ['PATH']}")

    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(fleet_status, "iter_checks", broken)
    statuses = fleet_status.fleet_status(PROJECT_DIR, "pulumi", Options(arp=False))

    assert [(status.stack, status.error) for status in statuses] == [
        (stack, "the checks could not be made: an unforeseen RuntimeError")
        for stack in ("beam00", "beam01", "kind-dev")
    ]
    assert fleet_status.exit_code(statuses) == 2

"""tools.fleet: the fleet's address plan as a table and as JSON, and a new cluster's stack file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.program import PROJECT, PROJECT_DIR, run_program

POOL_TYPE = "kubernetes:metallb.io/v1beta1:IPAddressPool"


def fleet(*args: str, project: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.fleet", "--project-dir", str(project), *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of Pulumi.yaml and the committed stack files."""
    for path in PROJECT_DIR.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_plan_prints_every_stack_the_reservations_and_the_free_ranges():
    result = fleet("plan")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "LAN 192.168.128.0/23 (Pulumi.yaml)",
        "",
        "stack     context          pool      addresses                       size  pinned",
        "beam00    beam00           lan-pool  192.168.129.70-192.168.129.80   11    -",
        "beam01    beam01           lan-pool  192.168.129.90-192.168.129.100  11    -",
        "kind-dev  kind-macula-dev  lan-pool  192.168.129.50-192.168.129.60   11    192.168.129.51",
        "",
        "reserved",
        "  192.168.129.3                    the primary host (DNS host and ingress)",
        "  not filled in                    the gateway (fill in Pulumi.yaml lan.reserved[1].addresses)",
        "  not filled in                    the DHCP scope (fill in Pulumi.yaml lan.reserved[2].addresses)",
        "",
        "free",
        "  192.168.128.1-192.168.129.2        258",
        "  192.168.129.4-192.168.129.49        46",
        "  192.168.129.61-192.168.129.69        9",
        "  192.168.129.81-192.168.129.89        9",
        "  192.168.129.101-192.168.129.254    154",
    ]


def test_plan_as_json_holds_the_same_data():
    data = json.loads(fleet("plan", "--json").stdout)

    assert data["lan"] == {"subnets": ["192.168.128.0/23"], "source": "Pulumi.yaml"}
    kind_dev = next(stack for stack in data["stacks"] if stack["stack"] == "kind-dev")
    assert kind_dev["context"] == "kind-macula-dev"
    assert kind_dev["pinned"] == ["192.168.129.51"]
    assert kind_dev["pools"][0]["addresses"][0] == {
        "text": "192.168.129.50-192.168.129.60",
        "first": "192.168.129.50",
        "last": "192.168.129.60",
        "size": 11,
    }
    assert [r["addresses"]["text"] if r["addresses"] else None for r in data["reserved"]] == [
        "192.168.129.3",
        None,
        None,
    ]
    assert sum(block["size"] for block in data["free"]) == 510 - 3 * 11 - 1


def stack_file(project: Path, stack: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text())["config"]
    return config


def test_add_cluster_writes_a_stack_file_on_the_next_free_range(project: Path):
    result = fleet("add-cluster", "beam02", "--context", "beam02", "--size", "11", project=project)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fleet: wrote Pulumi.beam02.yaml: context beam02, pool lan-pool ")
    config = stack_file(project, "beam02")
    assert config == {
        f"{PROJECT}:kubeContext": "beam02",
        f"{PROJECT}:pools": [{"name": "lan-pool", "addresses": ["192.168.129.110-192.168.129.120"]}],
        f"{PROJECT}:advertisements": [{"name": "lan-advertisement", "pools": ["lan-pool"]}],
    }
    assert "secure" not in (project / "Pulumi.beam02.yaml").read_text()
    # The program runs it, under mocks, as it runs every committed stack.
    run = run_program("beam02", config)
    [pool] = [r for r in run.resources if r.type == POOL_TYPE]
    assert pool.inputs["spec"]["addresses"] == ["192.168.129.110-192.168.129.120"]
    # The plan now counts it.
    assert "beam02    beam02" in fleet("plan", project=project).stdout


def test_add_cluster_keeps_a_number_like_context_text(project: Path):
    assert fleet("add-cluster", "beam02", "--context", "2024", "--size", "3", project=project).returncode == 0
    assert stack_file(project, "beam02")[f"{PROJECT}:kubeContext"] == "2024"


def test_add_cluster_refuses_an_existing_stack_and_changes_nothing(project: Path):
    before = (project / "Pulumi.beam00.yaml").read_text()

    result = fleet("add-cluster", "beam00", "--context", "beam00", "--size", "11", project=project)

    assert result.returncode == 1
    assert result.stderr == "fleet: stack beam00 exists already (Pulumi.beam00.yaml); nothing written\n"
    assert (project / "Pulumi.beam00.yaml").read_text() == before


def test_add_cluster_refuses_when_no_range_fits(project: Path):
    plan = yaml.safe_load((project / "Pulumi.yaml").read_text())
    plan["config"][f"{PROJECT}:lan"]["value"]["reserved"].append(
        {"addresses": "192.168.128.1-192.168.129.49", "reason": "the DHCP scope"}
    )
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(plan))

    result = fleet("add-cluster", "beam02", "--context", "beam02", "--size", "200", project=project)

    assert result.returncode == 1
    assert "fleet: no range of 200 addresses fits in 192.168.128.0/23" in result.stderr
    assert result.stderr.rstrip().endswith("; nothing written")
    assert not (project / "Pulumi.beam02.yaml").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("beam 02", "--context", "c", "--size", "3"), "is not a stack name"),
        (("-x", "--context", "c", "--size", "3"), "the following arguments are required: NAME"),
        (("beam02", "--context", "", "--size", "3"), "is not a kubeconfig context name"),
        (("beam02", "--context", "c", "--size", "0"), "is not a number of addresses from 1 to 254"),
        (("beam02", "--context", "c", "--size", "255"), "is not a number of addresses from 1 to 254"),
        (("beam02", "--context", "c", "--size", "1e2"), "is not a number of addresses from 1 to 254"),
        (("beam02", "--size", "3"), "the following arguments are required: --context"),
    ],
    ids=[
        "name-with-space",
        "option-like-name",
        "empty-context",
        "zero",
        "too-many",
        "not-decimal",
        "no-context",
    ],
)
def test_bad_arguments_get_exit_2_and_write_nothing(project: Path, args: tuple[str, ...], message: str):
    result = fleet("add-cluster", *args, project=project)

    assert result.returncode == 2
    assert message in result.stderr
    assert not list(project.glob("Pulumi.beam02.yaml"))


def test_an_invalid_stack_file_is_exit_2_naming_it(project: Path):
    (project / "Pulumi.beam00.yaml").write_text("config: [")

    result = fleet("plan", project=project)

    assert result.returncode == 2
    assert "Pulumi.beam00.yaml is not valid YAML" in result.stderr

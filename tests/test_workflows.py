"""The GitHub Actions workflows stay valid and locked down: schema, zizmor, shellcheck, pinned actions.

zizmor and check-jsonschema come from requirements-dev.txt and run offline (zizmor --offline; the
workflow schema is vendored in check-jsonschema). shellcheck checks every bash `run:` block as a script.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.program import PROJECT_DIR
from tests.tools import require_tool

WORKFLOWS_DIR = PROJECT_DIR / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])

# `uses: owner/repo@<full commit SHA> # vX.Y.Z`: a tag can be moved, a commit cannot, and the comment
# says which release the SHA is.
PINNED_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+\s*$")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def pip_tool(name: str) -> str:
    """A tool requirements-dev.txt installs next to this Python, else one on PATH.

    As require_tool does: without it the test skips on a workstation and fails in CI (CI=true).
    """
    beside_python = Path(sys.executable).parent / name
    path = str(beside_python) if beside_python.exists() else shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed; `make setup` installs requirements-dev.txt"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def workflow_id(path: Path) -> str:
    return path.name


def load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path.name} is not a YAML mapping"
    return document


def run_blocks(path: Path) -> list[tuple[str, str, str]]:
    """(job, step, script) of every `run:` step whose shell is bash (the default on Linux runners)."""
    workflow = load(path)
    default_shell = ((workflow.get("defaults") or {}).get("run") or {}).get("shell", "bash")
    blocks = []
    for job_id, job in (workflow.get("jobs") or {}).items():
        job_shell = ((job.get("defaults") or {}).get("run") or {}).get("shell", default_shell)
        for index, step in enumerate(job.get("steps") or []):
            if "run" in step and step.get("shell", job_shell) == "bash":
                blocks.append((job_id, step.get("name") or f"step {index + 1}", step["run"]))
    return blocks


def test_the_workflows_exist():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "drift.yml", "e2e.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=workflow_id)
def test_workflow_matches_the_github_schema(workflow):
    check_jsonschema = pip_tool("check-jsonschema")
    result = subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=workflow_id)
def test_zizmor_finds_nothing_of_medium_severity_or_more(workflow):
    zizmor = pip_tool("zizmor")
    result = subprocess.run(
        [zizmor, "--offline", "--no-progress", "--color", "never", "--min-severity", "medium", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=workflow_id)
def test_every_action_is_pinned_to_a_commit(workflow):
    uses = [line for line in workflow.read_text().splitlines() if re.match(r"^\s*(?:-\s+)?uses:", line)]
    assert uses, f"{workflow.name} uses no action"
    unpinned = [line.strip() for line in uses if not PINNED_USES.match(line)]
    assert not unpinned, f"pin to a full commit SHA with a `# vX.Y.Z` comment: {unpinned}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=workflow_id)
def test_permissions_are_granted_per_job_only(workflow):
    document = load(workflow)

    assert document.get("permissions") == {}, "the workflow must start from `permissions: {}`"
    for job_id, job in document["jobs"].items():
        assert "permissions" in job, f"job {job_id} must say which permissions it needs"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=workflow_id)
def test_checkouts_do_not_keep_the_token(workflow):
    for job_id, job in load(workflow)["jobs"].items():
        for step in job.get("steps") or []:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert (step.get("with") or {}).get("persist-credentials") is False, job_id


def test_the_pulumi_cli_matches_the_sdk_pin():
    """CI's CLI is the release of the SDK requirements.txt pins, so both move together."""
    sdk = re.search(r"^pulumi==(\S+)$", (PROJECT_DIR / "requirements.txt").read_text(), re.MULTILINE)
    assert sdk is not None
    versions = {
        match
        for workflow in WORKFLOWS
        for match in re.findall(r"pulumi-version:\s*(\S+)", workflow.read_text())
    }
    assert versions == {sdk.group(1)}


def _shellcheck_cases() -> list[Any]:
    return [
        pytest.param(workflow, script, id=f"{workflow.name}:{job}:{step}")
        for workflow in WORKFLOWS
        for job, step, script in run_blocks(workflow)
    ]


@pytest.mark.parametrize(("workflow", "script"), _shellcheck_cases())
def test_run_block_is_shellcheck_clean(workflow, script):
    shellcheck = require_tool("shellcheck")
    # Expressions are expanded before bash runs; a plain word keeps shellcheck's view of the line.
    # (zizmor's template-injection audit keeps them out of run blocks anyway.)
    text = "#!/usr/bin/env bash\nset -eo pipefail\n" + EXPRESSION.sub("GITHUB_EXPRESSION", script)
    result = subprocess.run(
        [shellcheck, "--severity=style", "--shell=bash", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout

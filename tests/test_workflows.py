"""The GitHub Actions workflows stay valid and locked down: schema, zizmor, shellcheck, pinned actions.

zizmor and check-jsonschema come from requirements-dev.txt and run offline (zizmor --offline; the
workflow schema is vendored in check-jsonschema). shellcheck checks every bash `run:` block as a script.
The e2e workflow's script runs here too, against stand-ins for docker, kind, kubectl and pulumi, to
check the order of its steps and that it cleans up whatever happens.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.program import PROJECT_DIR
from tests.system_programs import require_tool
from tests.upstream import UPSTREAM_DIR, requires_upstream

WORKFLOWS_DIR = PROJECT_DIR / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])

# `uses: owner/repo@<full commit SHA> # vX.Y.Z`: a tag can be moved, a commit cannot, and the comment
# says which release the SHA is.
PINNED_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+\s*$")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


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
    check_jsonschema = require_tool("check-jsonschema")
    result = subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=workflow_id)
def test_zizmor_finds_nothing_of_medium_severity_or_more(workflow):
    zizmor = require_tool("zizmor")
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


# --- drift.yml's issue step, run as the runner runs it, with a stand-in gh -------------------------------

ISSUE_STEP = "Open or update the stack's drift issue"
# Logs each call; prints the open issue's number for `issue list` and its last comment for `issue view`;
# copies the body of what it would post to the log.
STAND_IN_GH = """#!/usr/bin/env bash
echo "gh $*" >> "$GH_TEST_LOG"
case "$1 $2" in
  "issue list") echo "${GH_TEST_EXISTING:-}" ;;
  "issue view") echo "${GH_TEST_LAST_COMMENT:-}" ;;
  "issue create"|"issue comment")
    previous=""
    for argument in "$@"; do
      if [[ "$previous" == --body-file ]]; then
        { echo "--- body"; cat "$argument"; echo "--- end"; } >> "$GH_TEST_LOG"
      fi
      previous=$argument
    done ;;
esac
"""
DRIFT_REPORT = "| resource | change |\n| --- | --- |\n| lan-pool | spec.addresses |\n"
VERIFY_LINES = {
    "passed": "ok    controller      1/1 ready\nok    no check failed for stack beam00\n",
    "failed": "ok    controller      1/1 ready\nFAIL  lb-exclusion    node-1 carries the label again\n",
    "failed-and-not-made": (
        "FAIL  lb-exclusion    node-1 carries the label again\nerror dns             no answer\n"
    ),
    "not-made": "ok    controller      1/1 ready\nerror dns             no answer\n",
}


def run_issue_step(
    tmp_path: Path, drift: str, verify: str, verify_lines: str, *, report: bool = True, **gh: str
) -> str:
    """The step's script with bash as GitHub runs it (-eo pipefail); returns what gh was asked to do."""
    script = next(text for _, step, text in run_blocks(WORKFLOWS_DIR / "drift.yml") if step == ISSUE_STEP)
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    (stand_ins / "gh").write_text(STAND_IN_GH)
    (stand_ins / "gh").chmod(0o755)
    if report:
        (tmp_path / "report.md").write_text(DRIFT_REPORT)
    (tmp_path / "verify.txt").write_text(verify_lines)
    log = tmp_path / "gh.log"
    log.touch()
    env = {
        "PATH": f"{stand_ins}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "STACK": "beam00",
        "STATUS": drift,
        "REPORT": str(tmp_path / "report.md"),
        "VERIFY_STATUS": verify,
        "VERIFY_OUTPUT": str(tmp_path / "verify.txt"),
        "RUN_URL": "https://github.example/runs/1",
        "GH_TEST_LOG": str(log),
        **{f"GH_TEST_{key.upper()}": value for key, value in gh.items()},
    }
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return log.read_text()


def test_drift_is_filed_when_verify_could_not_make_every_check(tmp_path):
    calls = run_issue_step(tmp_path, "1", "2", VERIFY_LINES["failed-and-not-made"])

    assert "gh issue create --title Drift detected in stack beam00 --label drift" in calls
    drifted, broken = calls.split("## Broken: declared and applied, but not working")
    assert "| lan-pool | spec.addresses |" in drifted
    assert "FAIL  lb-exclusion" in broken and "error dns" in broken
    assert "Some checks could not be made" in broken


def test_a_broken_stack_is_filed_when_the_drift_check_could_not_be_made(tmp_path):
    calls = run_issue_step(tmp_path, "2", "1", VERIFY_LINES["failed"], existing="12")

    assert "gh issue comment 12 --body-file" in calls
    assert "Unknown: the drift check could not be made this time (tools.drift exit 2)" in calls
    assert "FAIL  lb-exclusion    node-1 carries the label again" in calls
    assert "Nothing drifted." not in calls


@pytest.mark.parametrize("drift", ["2", "137"], ids=["could-not-check", "killed"])
def test_a_drift_check_that_did_not_finish_is_unknown_never_nothing_drifted(tmp_path, drift):
    calls = run_issue_step(tmp_path, drift, "1", VERIFY_LINES["failed"])

    assert f"Unknown: the drift check could not be made this time (tools.drift exit {drift})" in calls
    assert "Nothing drifted." not in calls


def test_a_missing_drift_report_is_said_not_fatal(tmp_path):
    (tmp_path / "gone").mkdir()
    calls = run_issue_step(tmp_path / "gone", "3", "0", VERIFY_LINES["passed"], report=False)

    assert "(tools.drift wrote no report; see the run)" in calls


def test_an_unhealthy_refresh_is_broken_not_drifted(tmp_path):
    calls = run_issue_step(tmp_path, "3", "0", VERIFY_LINES["passed"])

    drifted, broken = calls.split("## Broken: declared and applied, but not working")
    assert "Nothing drifted." in drifted
    assert "| lan-pool | spec.addresses |" in broken
    assert "Every check passed." not in broken


@pytest.mark.parametrize(
    ("drift", "verify", "lines"),
    [("2", "0", "passed"), ("0", "2", "not-made"), ("2", "2", "not-made")],
    ids=["drift-not-made", "checks-not-made", "neither-made"],
)
def test_checks_not_made_and_nothing_found_file_nothing_and_claim_nothing(tmp_path, drift, verify, lines):
    calls = run_issue_step(tmp_path, drift, verify, VERIFY_LINES[lines], existing="12")

    assert calls.splitlines() == [
        "gh issue list --state open --label drift --limit 200 --json number,title --jq "
        "[.[] | select(.title == env.TITLE)][0].number // empty"
    ]


def test_back_in_order_is_said_once(tmp_path):
    calls = run_issue_step(tmp_path, "0", "0", VERIFY_LINES["passed"], existing="12", last_comment="found")
    assert "gh issue comment 12 --body-file" in calls and "is back in sync" in calls

    again = tmp_path / "again"
    again.mkdir()
    calls = run_issue_step(
        again, "0", "0", VERIFY_LINES["passed"], existing="12", last_comment="<!-- drift:in-sync -->"
    )
    assert "gh issue comment" not in calls


# --- scripts/e2e-kind.sh, with stand-ins for docker, kind, kubectl, make and pulumi ---------------------

STAND_IN = """#!/usr/bin/env bash
echo "{name} $*" >> "$E2E_TEST_LOG"
{body}
exit 0
"""
STAND_IN_BODIES = {
    # The kind network's subnets; the ARP probe's log: answered, one miss, answered 3.2 s later.
    "docker": """case $1 in
  network) echo "172.18.0.0/16 fc00:f853:ccd:e793::/64 " ;;
  logs) printf '%s\\n' "100.0 ok" "100.1 ok" "100.4 miss" "103.3 ok" ;;
esac""",
    "kind": '[[ "$1 $2" == "get clusters" ]] && echo "${E2E_TEST_EXISTING_CLUSTER:-}"',
    # The Service's address: the pool's first, or E2E_TEST_IP_AFTER_UP once `pulumi up` ran.
    "kubectl": """if [[ "$*" == *"jsonpath={.status.loadBalancer.ingress[0].ip}"* ]]; then
  address=172.18.255.200
  [[ -e "$E2E_TEST_LOG.up" ]] && address=${E2E_TEST_IP_AFTER_UP:-$address}
  echo "$address"
fi""",
    "make": "",
    # Writes the stack file as the real CLI does, so the test sees whether the script removes it.
    "pulumi": """stack=""; previous=""
for argument in "$@"; do [[ "$previous" == --stack ]] && stack=$argument; previous=$argument; done
[[ "$1 $2" == "stack init" ]] && echo "encryptionsalt: test" > "Pulumi.$3.yaml"
[[ "$1" == config ]] && echo "# config $*" >> "Pulumi.$stack.yaml"
[[ "$1" == up && -n "${E2E_TEST_FAIL_UP:-}" ]] && exit 1
[[ "$1" == up ]] && touch "$E2E_TEST_LOG.up"
[[ "$1 $2" == "stack rm" && -n "${E2E_TEST_FAIL_STACK_RM:-}" ]] && exit 1
[[ "$1 $2" == "stack rm" ]] && rm -f "Pulumi.$stack.yaml"
""",
}


@pytest.fixture
def e2e_project(tmp_path, monkeypatch):
    """A copy of the script and the KinD config in a project of its own, with logging stand-ins on PATH."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    (project / "kind").mkdir()
    (project / "venv" / "bin").mkdir(parents=True)
    for relative in ("scripts/e2e-kind.sh", "kind/e2e-cluster.yaml", "Pulumi.yaml"):
        (project / relative).write_text((PROJECT_DIR / relative).read_text())
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    programs = {
        **{name: stand_ins / name for name in STAND_IN_BODIES},
        "venv-python": project / "venv/bin/python",
    }
    for name, path in programs.items():
        path.write_text(STAND_IN.format(name=name, body=STAND_IN_BODIES.get(name, "")))
        path.chmod(0o755)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("PATH", f"{stand_ins}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("E2E_TEST_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("E2E_STACK", "e2e-test")
    for name in (
        "E2E_CLUSTER",
        "E2E_KEEP",
        "E2E_SCENARIO",
        "E2E_NATIVE_MANIFEST",
        "E2E_TEST_IP_AFTER_UP",
        "E2E_TEST_FAIL_UP",
        "E2E_TEST_FAIL_STACK_RM",
        "E2E_TEST_EXISTING_CLUSTER",
    ):
        monkeypatch.delenv(name, raising=False)
    return project, tmp_path / "calls.log", tmp_path / "tmp"


def run_e2e(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(project / "scripts" / "e2e-kind.sh"), *args], capture_output=True, text=True, check=False
    )


def test_e2e_deploys_verifies_checks_drift_and_cleans_up(e2e_project):
    project, calls, tmp = e2e_project

    result = run_e2e(project)

    assert result.returncode == 0, result.stderr
    log = calls.read_text().splitlines()
    assert (
        "pulumi config set --stack e2e-test --path pools[0].addresses[0] 172.18.255.200-172.18.255.210" in log
    )
    assert "pulumi config set --stack e2e-test --path bootstrap.ip 172.18.255.200" in log
    # Docker's network is the e2e stack's LAN, not Pulumi.yaml's.
    assert "pulumi config set --stack e2e-test --path lan.subnet 172.18.0.0/16" in log
    assert (
        "pulumi config set --stack e2e-test --path clearLoadBalancerExclusion[0] macula-e2e-control-plane"
        in log
    )
    steps = [
        "kind create cluster --name macula-e2e",
        "pulumi up --yes",
        "venv-python -m tools.verify --stack e2e-test --strict-udp",
        "venv-python -m tools.drift e2e-test",
        "pulumi preview --expect-no-changes --non-interactive --stack e2e-test",
        "pulumi destroy --yes",
        "pulumi stack rm --yes --stack e2e-test",
        "kind delete cluster --name macula-e2e",
    ]
    positions = [next(i for i, line in enumerate(log) if line.startswith(step)) for step in steps]
    assert positions == sorted(positions)
    assert not (project / "Pulumi.e2e-test.yaml").exists()
    assert list(tmp.iterdir()) == []


def test_e2e_that_fails_still_removes_the_stack_file_and_its_cluster(e2e_project, monkeypatch):
    project, calls, tmp = e2e_project
    monkeypatch.setenv("E2E_TEST_FAIL_UP", "1")
    # Pulumi's `stack rm` would delete the stack file; here it fails, and the script must delete it.
    monkeypatch.setenv("E2E_TEST_FAIL_STACK_RM", "1")

    result = run_e2e(project)

    assert result.returncode != 0
    log = calls.read_text()
    assert "pulumi stack init e2e-test" in log
    assert "venv-python" not in log
    # The cluster goes anyway, so nothing is destroyed object by object first.
    assert "pulumi destroy" not in log
    assert "pulumi stack rm --yes --force --stack e2e-test" in log
    assert "kind delete cluster --name macula-e2e" in log
    assert not (project / "Pulumi.e2e-test.yaml").exists()
    assert list(tmp.iterdir()) == []


def test_e2e_on_a_cluster_it_did_not_create_destroys_but_leaves_the_cluster(e2e_project, monkeypatch):
    project, calls, _ = e2e_project
    monkeypatch.setenv("E2E_TEST_EXISTING_CLUSTER", "macula-e2e")
    monkeypatch.setenv("E2E_TEST_FAIL_UP", "1")

    result = run_e2e(project)

    assert result.returncode != 0
    log = calls.read_text()
    assert "kind create cluster" not in log
    assert "pulumi destroy --yes --non-interactive --stack e2e-test" in log
    assert "kind delete cluster" not in log
    assert not (project / "Pulumi.e2e-test.yaml").exists()


def in_order(log: list[str], steps: list[str]) -> list[str]:
    """The steps not found in the log, each looked for after the one before it."""
    position, missing = 0, []
    for step in steps:
        found = next((i for i in range(position, len(log)) if log[i].startswith(step)), None)
        if found is None:
            missing.append(step)
        else:
            position = found + 1
    return missing


@requires_upstream
def test_e2e_runbook_scenario_sets_up_by_hand_then_takes_over_and_measures(e2e_project, monkeypatch):
    project, calls, tmp = e2e_project
    monkeypatch.setenv("E2E_NATIVE_MANIFEST", str(UPSTREAM_DIR / "metallb-native.yaml"))

    result = run_e2e(project, "--scenario", "runbook")

    assert result.returncode == 0, result.stderr
    log = calls.read_text().splitlines()
    context = "kubectl --context kind-macula-e2e"
    assert not in_order(
        log,
        [
            "kind create cluster --name macula-e2e",
            f"{context} apply -f {tmp}/",
            f"{context} -n metallb-system rollout status daemonset/speaker",
            f"{context} label node macula-e2e-control-plane "
            "node.kubernetes.io/exclude-from-external-load-balancers-",
            f"{context} apply -f -",
            f"{context} -n macula patch service macula-bootstrap",
            "docker run --detach --name macula-e2e-arp-probe --network kind",
            "pulumi config set --stack e2e-test adoptExisting true",
            "venv-python -m tools.survey --stack e2e-test",
            "pulumi up --yes",
            "venv-python -m tools.verify --stack e2e-test --strict-udp",
            "docker logs macula-e2e-arp-probe",
            "venv-python -m tools.drift e2e-test",
            "pulumi preview --expect-no-changes --non-interactive --stack e2e-test",
            "pulumi destroy --yes",
            "kind delete cluster --name macula-e2e",
        ],
    )
    assert "pulumi config set --stack e2e-test --path pools[0].name lan-pool" in log
    assert "pulumi config set --stack e2e-test --path bootstrap.ip 172.18.255.200" in log
    # Docker's network is the e2e stack's LAN, not Pulumi.yaml's.
    assert "pulumi config set --stack e2e-test --path lan.subnet 172.18.0.0/16" in log
    assert (
        "longest gap without an ARP answer for 172.18.255.200: 3.2s (1 probes unanswered); "
        "the Service kept 172.18.255.200" in result.stderr
    )
    assert "docker rm --force macula-e2e-arp-probe" in log
    assert list(tmp.iterdir()) == []


@requires_upstream
def test_e2e_runbook_scenario_fails_when_the_takeover_moves_the_service(e2e_project, monkeypatch):
    project, calls, _ = e2e_project
    monkeypatch.setenv("E2E_NATIVE_MANIFEST", str(UPSTREAM_DIR / "metallb-native.yaml"))
    monkeypatch.setenv("E2E_TEST_IP_AFTER_UP", "172.18.255.201")

    result = run_e2e(project, "--scenario", "runbook")

    assert result.returncode != 0
    assert "the takeover moved the Service from 172.18.255.200 to 172.18.255.201" in result.stderr
    assert "venv-python -m tools.drift" not in calls.read_text()


def test_e2e_runbook_scenario_refuses_a_manifest_that_is_not_v0_14_3(e2e_project, monkeypatch, tmp_path):
    project, calls, _ = e2e_project
    tampered = tmp_path / "metallb-native.yaml"
    tampered.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: metallb-system\n")
    monkeypatch.setenv("E2E_NATIVE_MANIFEST", str(tampered))

    result = run_e2e(project, "--scenario", "runbook")

    assert result.returncode != 0
    assert "is not the v0.14.3 manifest (sha256 df1ca995" in result.stderr
    assert "metallb-native.yaml" not in calls.read_text()


def test_e2e_rejects_an_unknown_scenario(e2e_project):
    project, _, _ = e2e_project
    result = run_e2e(project, "--scenario", "upgrade")
    assert result.returncode == 2
    assert "--scenario is fresh or runbook, not 'upgrade'" in result.stderr

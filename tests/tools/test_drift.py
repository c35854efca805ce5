"""`python -m tools.drift` against recorded Pulumi CLI output (tests/tools/recorded/, see its README)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from project_files import stack_names
from tools import drift
from tools.drift import Outcome, judge, render_markdown, render_table

RECORDED = Path(__file__).resolve().parent / "recorded"


@dataclass(frozen=True)
class Recording:
    exit_code: int
    stdout: str
    stderr: str


def recorded(case: str) -> Recording:
    folder = RECORDED / case
    return Recording(
        int((folder / "exit-code").read_text()),
        (folder / "stdout").read_text(),
        (folder / "stderr").read_text(),
    )


def judge_recorded(stack: str, case: str) -> drift.Verdict:
    run = recorded(case)
    return judge(stack, run.exit_code, run.stdout, run.stderr)


POOL_URN = (
    "urn:pulumi:beam00::macula-lan::macula:lan:L2AddressPools$kubernetes:metallb.io/v1beta1:IPAddressPool"
    "::address-pools-lan-pool"
)


def test_every_recording_is_described_in_the_readme():
    readme = (RECORDED / "README.md").read_text()
    cases = sorted(path.name for path in RECORDED.iterdir() if path.is_dir())
    assert cases
    for case in cases:
        assert f"| `{case}` |" in readme, f"{case} has no row in tests/tools/recorded/README.md"


def test_in_sync_stack_is_reported_in_sync():
    verdict = judge_recorded("beam00", "in-sync")

    assert verdict.outcome is Outcome.IN_SYNC
    assert verdict.changes == ()
    assert render_table([verdict]) == ("stack   result   details\nbeam00  in sync  31 resources unchanged\n")


def test_updated_resources_are_named_with_their_changed_fields():
    verdict = judge_recorded("beam00", "drift-update")

    assert verdict.outcome is Outcome.DRIFTED
    assert [(change.op, change.urn, change.keys) for change in verdict.changes][1] == (
        "update",
        POOL_URN,
        ("spec.addresses",),
    )
    assert render_table([verdict]).splitlines() == [
        "stack   result       details",
        "beam00  drifted (2)  update kubernetes:apps/v1:DaemonSet"
        " metallb-chart:metallb-system/metallb-speaker (differs in spec.template.spec.containers)",
        "                     update kubernetes:metallb.io/v1beta1:IPAddressPool address-pools-lan-pool"
        " (differs in spec.addresses)",
    ]


def test_resource_deleted_in_the_cluster_shows_as_missing():
    verdict = judge_recorded("beam01", "drift-deleted")

    assert verdict.outcome is Outcome.DRIFTED
    assert render_table([verdict]).splitlines()[1] == (
        "beam01  drifted (1)  create kubernetes:metallb.io/v1beta1:L2Advertisement"
        " address-pools-lan-advertisement (missing from the cluster)"
    )


def test_drift_from_a_cli_without_exit_code_7_is_told_by_its_message():
    verdict = judge_recorded("beam00", "drift-old-cli")

    assert recorded("drift-old-cli").exit_code == 255
    assert verdict.outcome is Outcome.DRIFTED
    assert [change.urn for change in verdict.changes] == [POOL_URN]


def test_unreachable_cluster_is_an_error_with_the_providers_reason():
    verdict = judge_recorded("beam00", "error-cluster-unreachable")

    assert verdict.outcome is Outcome.ERROR
    table = render_table([verdict]).splitlines()
    # One line per distinct message, though pulumi repeated each for every resource it tried to read.
    assert len(table) == 3
    assert table[1].startswith(
        "beam00  error (exit 1)  Preview failed: failed to read resource state due to unreachable cluster."
    )
    assert (
        table[2]
        .lstrip()
        .startswith(
            "warning: configured Kubernetes cluster is unreachable: unable to load schema information"
        )
    )
    assert table[2].endswith("connect: no route to host")


def test_missing_passphrase_is_an_error_naming_the_variables():
    verdict = judge_recorded("kind-dev", "error-no-passphrase")

    assert verdict.outcome is Outcome.ERROR
    assert render_table([verdict]).splitlines()[1] == (
        "kind-dev  error (exit 1)  getting stack configuration: get stack secrets manager: passphrase must be"
        " set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
    )


def test_unreadable_output_is_an_error_even_when_pulumi_exits_0():
    verdict = judge_recorded("beam01", "unparseable")

    assert verdict.outcome is Outcome.ERROR
    assert (
        render_table([verdict])
        .splitlines()[1]
        .startswith(
            "beam01  error   pulumi exited 0 but its JSON output could not be read: stdout is not JSON ("
        )
    )


def test_exit_code_7_means_drift_even_when_the_output_is_unreadable():
    verdict = judge("beam01", 7, recorded("unparseable").stdout, "")

    assert verdict.outcome is Outcome.DRIFTED
    assert verdict.reason.startswith("pulumi proposed changes, but its JSON output could not be read")


def test_drift_without_resource_steps_says_what_the_summary_counted():
    verdict = judge("beam00", 7, json.dumps({"changeSummary": {"same": 30, "update": 1}}), "")

    assert verdict.outcome is Outcome.DRIFTED
    assert render_table([verdict]).splitlines()[1] == (
        "beam00  drifted  pulumi proposed changes (update 1) but listed no resource step"
    )


def test_output_a_plugin_printed_before_the_digest_is_skipped():
    run = recorded("in-sync")

    verdict = judge("beam00", run.exit_code, "Downloading plugin kubernetes v4.34.2\n" + run.stdout, "")

    assert verdict.outcome is Outcome.IN_SYNC


def test_markdown_summary_names_each_drifted_resource_and_the_fix():
    verdicts = [
        judge_recorded("beam00", "drift-update"),
        judge_recorded("kind-dev", "error-no-passphrase"),
    ]

    markdown = render_markdown(verdicts)

    assert "| `beam00` | **drifted** | 2 resources differ |" in markdown
    assert "| `kind-dev` | **error (exit 1)** | getting stack configuration: " in markdown
    assert (
        "| update | `kubernetes:metallb.io/v1beta1:IPAddressPool` | `address-pools-lan-pool` "
        "| differs in spec.addresses |"
    ) in markdown
    assert POOL_URN in markdown
    assert "`pulumi up --stack beam00` puts the cluster back" in markdown


def test_exit_status_puts_errors_before_drift_and_drift_before_unhealthy():
    in_sync = judge_recorded("beam00", "in-sync")
    drifted = judge_recorded("beam01", "drift-deleted")
    failed = judge_recorded("kind-dev", "error-no-passphrase")
    unhealthy = judge_recorded("beam00", "unhealthy-refresh")

    assert drift.exit_status([in_sync]) == drift.EXIT_IN_SYNC == 0
    assert drift.exit_status([in_sync, drifted]) == drift.EXIT_DRIFTED == 1
    assert drift.exit_status([drifted, failed, in_sync]) == drift.EXIT_ERROR == 2
    assert drift.exit_status([in_sync, unhealthy]) == drift.EXIT_UNHEALTHY == 3
    assert drift.exit_status([unhealthy, drifted]) == drift.EXIT_DRIFTED


def test_a_refresh_that_finds_pods_not_ready_is_unhealthy_not_drift():
    verdict = judge_recorded("beam00", "unhealthy-refresh")

    assert verdict.outcome is Outcome.UNHEALTHY
    [change] = verdict.changes
    assert (change.op, change.type, change.name) == (
        "update",
        "kubernetes:apps/v1:Deployment",
        "metallb-chart:metallb-system/metallb-controller",
    )
    assert change.describe() == (
        "not ready: Resource 'metallb-controller' was created but failed to initialize"
    )
    table = render_table([verdict])
    assert (
        "beam00  unhealthy (1)  update kubernetes:apps/v1:Deployment "
        "metallb-chart:metallb-system/metallb-controller (not ready: " in table
    )
    markdown = render_markdown([verdict])
    assert "| `beam00` | **unhealthy** | 1 resource not ready |" in markdown
    assert "this is not drift" in markdown
    assert "puts the cluster back" not in markdown


# --- The command line, with a stand-in `pulumi` that replays the recordings -----------------------------

FAKE_PULUMI = """\
import json, os, sys
arguments = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps(arguments) + "\\n")
stack = arguments[arguments.index("--stack") + 1]
folder = os.path.join(os.environ["FAKE_PULUMI_RECORDED"], json.loads(os.environ["FAKE_PULUMI_CASES"])[stack])
sys.stdout.write(open(os.path.join(folder, "stdout")).read())
sys.stderr.write(open(os.path.join(folder, "stderr")).read())
sys.exit(int(open(os.path.join(folder, "exit-code")).read()))
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory with three stack files and a `pulumi` that answers from the recordings."""
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "Pulumi.yaml").write_text("name: macula-lan\n")
    for stack in ("beam00", "beam01", "kind-dev"):
        (project_dir / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    pulumi = tmp_path / "pulumi"
    pulumi.write_text(f"#!{sys.executable}\n{FAKE_PULUMI}")
    pulumi.chmod(0o755)
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("FAKE_PULUMI_RECORDED", str(RECORDED))
    monkeypatch.setenv("PULUMI_ENABLE_STREAMING_JSON_PREVIEW", "true")
    return project_dir, pulumi, tmp_path / "calls.jsonl"


def expected_call(stack: str) -> list[str]:
    """The arguments `tools.drift` must give pulumi for one stack."""
    return [
        *("preview", "--stack", stack, "--refresh", "--expect-no-changes"),
        *("--json", "--non-interactive", "--color", "never"),
    ]


def set_cases(monkeypatch: pytest.MonkeyPatch, cases: dict[str, str]) -> None:
    monkeypatch.setenv("FAKE_PULUMI_CASES", json.dumps(cases))


def test_cli_checks_every_stack_and_prints_the_table(project, monkeypatch, capsys):
    project_dir, pulumi, calls = project
    set_cases(monkeypatch, {"beam00": "in-sync", "beam01": "drift-deleted", "kind-dev": "in-sync"})
    summary = project_dir / "summary.md"
    summary.write_text("earlier steps' summary\n")

    status = drift.main(
        ["--pulumi", str(pulumi), "--project-dir", str(project_dir), "--summary", str(summary)]
    )

    assert status == drift.EXIT_DRIFTED
    assert capsys.readouterr().out.splitlines() == [
        "stack     result       details",
        "beam00    in sync      31 resources unchanged",
        "beam01    drifted (1)  create kubernetes:metallb.io/v1beta1:L2Advertisement"
        " address-pools-lan-advertisement (missing from the cluster)",
        "kind-dev  in sync      31 resources unchanged",
    ]
    assert [json.loads(line) for line in calls.read_text().splitlines()] == [
        expected_call(stack) for stack in ("beam00", "beam01", "kind-dev")
    ]
    assert summary.read_text().startswith("earlier steps' summary\n### Drift check\n")


def test_cli_turns_off_streaming_json_for_pulumi(project, monkeypatch):
    project_dir, pulumi, _ = project
    log = project_dir / "env.txt"
    pulumi.write_text(
        f"#!{sys.executable}\nimport os\n"
        f"open({str(log)!r}, 'w').write(os.environ.get('PULUMI_ENABLE_STREAMING_JSON_PREVIEW', 'unset'))\n"
        "print('{}')\n"
    )

    drift.main(["beam00", "--pulumi", str(pulumi), "--project-dir", str(project_dir)])

    assert log.read_text() == "unset"


def test_cli_checks_only_the_stacks_named(project, monkeypatch, capsys):
    project_dir, pulumi, calls = project
    set_cases(monkeypatch, {"kind-dev": "error-no-passphrase"})

    status = drift.main(["--stack", "kind-dev", "--pulumi", str(pulumi), "--project-dir", str(project_dir)])

    assert status == drift.EXIT_ERROR
    assert len(calls.read_text().splitlines()) == 1
    assert capsys.readouterr().out.splitlines()[1].startswith("kind-dev  error (exit 1)  getting stack")


def test_cli_reports_a_missing_pulumi_as_an_error(project, capsys):
    project_dir, _, _ = project

    status = drift.main(
        ["beam00", "--pulumi", str(project_dir / "no-such-pulumi"), "--project-dir", str(project_dir)]
    )

    assert status == drift.EXIT_ERROR
    assert "no-such-pulumi not found: install the Pulumi CLI" in capsys.readouterr().out


def test_cli_gives_up_on_a_preview_that_hangs_and_stops_its_children(project, capsys, tmp_path):
    project_dir, pulumi, _ = project
    child_pid = tmp_path / "child.pid"
    # A hung pulumi whose plugin (here a sleeping child) would outlive it if only pulumi were killed.
    pulumi.write_text(
        f"#!{sys.executable}\nimport subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\ntime.sleep(60)\n"
    )

    status = drift.main(
        ["beam00", "--pulumi", str(pulumi), "--project-dir", str(project_dir), "--timeout", "1"]
    )

    assert status == drift.EXIT_ERROR
    assert (
        "pulumi preview did not finish within 1s; it and its children were stopped" in capsys.readouterr().out
    )
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while process_alive(pid):
        assert time.monotonic() < deadline, "pulumi's child is still running"
        time.sleep(0.05)


def process_alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("non-utf8", (), "pulumi's stdout is not UTF-8 (byte 0xff at offset 0)"),
        ("not-executable", (), "cannot run"),
        ("empty-digest", (), "pulumi exited 0 but its JSON has no changeSummary"),
    ],
    ids=["non-utf8", "not-executable", "empty-digest"],
)
def test_failures_to_make_the_check_exit_2_not_1(project, capsys, setup: str, args, message: str):
    project_dir, pulumi, _ = project
    if setup == "non-utf8":
        pulumi.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.buffer.write(b'\\xff{{}}')\n")
    elif setup == "not-executable":
        pulumi.chmod(0o644)
    else:
        pulumi.write_text(f"#!{sys.executable}\nprint('{{}}')\n")

    status = drift.main(["beam00", "--pulumi", str(pulumi), "--project-dir", str(project_dir), *args])

    assert status == drift.EXIT_ERROR
    assert message in capsys.readouterr().out


def test_an_unwritable_summary_is_exit_2(project, monkeypatch, capsys):
    project_dir, pulumi, _ = project
    set_cases(monkeypatch, {"beam00": "drift-deleted"})

    status = drift.main(
        [
            "beam00",
            "--pulumi",
            str(pulumi),
            "--project-dir",
            str(project_dir),
            "--summary",
            "/nonexistent/x.md",
        ]
    )

    assert status == drift.EXIT_ERROR
    assert "drift: cannot write the summary to /nonexistent/x.md: No such file or directory" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0", "1e9", "soon"])
def test_a_timeout_that_is_no_number_of_seconds_is_exit_2(project, timeout: str, capsys):
    project_dir, pulumi, _ = project
    with pytest.raises(SystemExit) as exit_info:
        drift.main(
            ["beam00", "--pulumi", str(pulumi), "--project-dir", str(project_dir), "--timeout", timeout]
        )
    assert exit_info.value.code == 2
    assert "--timeout" in capsys.readouterr().err


def test_an_unforeseen_failure_is_exit_2(monkeypatch, capsys):
    def broken(argv):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(drift, "main", broken)

    assert drift.run([]) == drift.EXIT_ERROR
    assert "something nobody foresaw" in capsys.readouterr().err


def test_list_stacks_prints_the_workflow_matrix(project, capsys):
    project_dir, _, calls = project

    assert drift.main(["--list-stacks", "--project-dir", str(project_dir)]) == 0
    assert json.loads(capsys.readouterr().out) == ["beam00", "beam01", "kind-dev"]
    assert drift.main(["--list-stacks", "beam01", "--project-dir", str(project_dir)]) == 0
    assert json.loads(capsys.readouterr().out) == ["beam01"]
    assert not calls.exists()


def test_excluded_stacks_leave_the_default_set_only(project, capsys):
    project_dir, _, _ = project
    listed = ["--list-stacks", "--project-dir", str(project_dir)]

    drift.main([*listed, "--exclude", "kind-dev, beam01"])
    assert json.loads(capsys.readouterr().out) == ["beam00"]
    drift.main([*listed, "--exclude", "-"])
    assert json.loads(capsys.readouterr().out) == ["beam00", "beam01", "kind-dev"]
    drift.main([*listed, "kind-dev", "--exclude", "kind-dev"])
    assert json.loads(capsys.readouterr().out) == ["kind-dev"]


def test_list_stacks_of_this_project_matches_its_stack_files(capsys):
    drift.main(["--list-stacks"])

    listed = json.loads(capsys.readouterr().out)
    assert listed == sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in drift.PROJECT_DIR.glob("Pulumi.*.yaml")
    )
    assert "beam00" in listed


@pytest.mark.parametrize("name", ["beam02", "../beam00", "beam00;id"])
def test_unknown_stack_is_refused_before_pulumi_runs(project, name, capsys):
    project_dir, pulumi, calls = project

    with pytest.raises(SystemExit) as exit_info:
        drift.main([name, "--pulumi", str(pulumi), "--project-dir", str(project_dir)])

    assert exit_info.value.code == 2
    assert f"no stack {name!r}" in capsys.readouterr().err
    assert not calls.exists()


def test_module_needs_only_the_standard_library(project):
    """The workflows list stacks with the runner's python3, before any virtualenv exists."""
    project_dir, _, _ = project

    # -S: without site-packages, so an import of pulumi, yaml or the project's modules would fail here.
    result = subprocess.run(
        [sys.executable, "-S", "-m", "tools.drift", "--list-stacks", "--project-dir", str(project_dir)],
        cwd=drift.PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["beam00", "beam01", "kind-dev"]


def test_stacks_are_listed_without_the_pulumi_sdk():
    """The workflows' discover jobs run the system python3, which has no Pulumi SDK."""
    blocked = "import runpy, sys; sys.modules['pulumi'] = None; sys.argv = ['drift', '--list-stacks']; "
    result = subprocess.run(
        [sys.executable, "-c", blocked + "runpy.run_module('tools.drift', run_name='__main__')"],
        cwd=drift.PROJECT_DIR, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == stack_names(drift.PROJECT_DIR)

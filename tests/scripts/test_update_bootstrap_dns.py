"""scripts/update-bootstrap-dns.sh against a real dnsmasq on 127.0.0.1: the override goes, the rest stays.

Each test writes a conf dir, starts dnsmasq on it, runs the script's command text (the same text
components/dns_override.py hands to Pulumi) and asks dnsmasq with dig what it answers. The script restarts
that dnsmasq through DNSMASQ_RESTART_COMMAND, which also counts the restarts; `dnsmasq --test` is the
script's real default check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shell_scripts import script_command
from tests.dnsmasq import Dnsmasq, free_port
from tests.sshd import LoginUser, LoginUsers, login_users, require_root, run_command_text, shared_temp_dir
from tests.system_programs import require_tool

NAME = "bootstrap.macula.local"

MACULA_CONF = """\
# Macula names on the LAN. bootstrap.macula.local pointed at a local stub:
address=/bootstrap.macula.local/127.0.0.2
#address=/bootstrap.macula.local/127.0.0.2   an old copy, commented out, stays
address=/legacy.macula.local/bootstrap.macula.local/127.0.0.2   # the old name of the stub
address=/macula.local/127.0.0.9
address=/xbootstrap.macula.local/127.0.0.7
host-record=other.macula.local,127.0.0.5
cname=www.macula.local,other.macula.local
"""
MACULA_CONF_AFTER = """\
# Macula names on the LAN. bootstrap.macula.local pointed at a local stub:
#address=/bootstrap.macula.local/127.0.0.2   an old copy, commented out, stays
address=/legacy.macula.local/127.0.0.2   # the old name of the stub
address=/macula.local/127.0.0.9
address=/xbootstrap.macula.local/127.0.0.7
host-record=other.macula.local,127.0.0.5
cname=www.macula.local,other.macula.local
"""
# Another file, whose host-record also names the bootstrap host (upper case, trailing dot), and no final
# newline, which must stay missing.
PRINTER_CONF = "host-record=printer.macula.local,Bootstrap.Macula.Local.,127.0.0.2"
PRINTER_CONF_AFTER = "host-record=printer.macula.local,127.0.0.2"
# Files dnsmasq's conf-dir skips, so the script must leave them alone too.
SKIPPED = {
    ".macula.conf.swp": "address=/bootstrap.macula.local/127.0.0.2\n",
    "macula.conf~": "address=/bootstrap.macula.local/127.0.0.2\n",
    "#macula.conf#": "address=/bootstrap.macula.local/127.0.0.2\n",
}
OTHER_NAMES = [
    "legacy.macula.local",
    "other.macula.local",
    "www.macula.local",
    "printer.macula.local",
    "xbootstrap.macula.local",
    "anything.macula.local",
]


def run_script(
    conf_dir: Path, env: dict[str, str], *args: str, as_user: LoginUser | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the command text Pulumi runs, under /bin/sh -c as sshd would; args default to NAME CONF_DIR."""
    command = script_command("update-bootstrap-dns.sh", *(args or (NAME, str(conf_dir))))
    return run_command_text(command, env, as_user)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@dataclass
class Served:
    conf_dir: Path
    dnsmasq: Dnsmasq

    @property
    def env(self) -> dict[str, str]:
        return {"DNSMASQ_RESTART_COMMAND": self.dnsmasq.restart_command}

    def answers(self) -> dict[str, list[str]]:
        return {name: self.dnsmasq.query(name) for name in [NAME, *OTHER_NAMES]}


@pytest.fixture
def conf_dir() -> Iterator[Path]:
    """A root-owned conf dir other users may read, like /etc/dnsmasq.d."""
    path = shared_temp_dir("macula-dnsmasq.d-")
    yield path
    shutil.rmtree(path)


@pytest.fixture
def served(conf_dir: Path, tmp_path: Path) -> Iterator[Served]:
    require_tool("dnsmasq")
    require_tool("dig")
    (conf_dir / "macula.conf").write_text(MACULA_CONF)
    (conf_dir / "printer.conf").write_text(PRINTER_CONF)
    for name, text in SKIPPED.items():
        (conf_dir / name).write_text(text)
    for path in conf_dir.iterdir():
        path.chmod(0o644)
    dnsmasq = Dnsmasq(tmp_path / "dnsmasq", conf_dir, free_port())
    dnsmasq.start()
    try:
        yield Served(conf_dir, dnsmasq)
    finally:
        dnsmasq.stop()


@pytest.fixture(scope="module")
def users() -> Iterator[LoginUsers]:
    with login_users() as created:
        yield created


def test_removes_the_override_and_keeps_every_other_record(served: Served):
    before = served.answers()
    assert before[NAME] == ["127.0.0.2"]

    result = run_script(served.conf_dir, served.env)

    assert result.returncode == 0, result.stderr
    after = served.answers()
    # No longer the stub; the parent domain's record answers now, as for any other macula.local name.
    assert after[NAME] == ["127.0.0.9"]
    assert {n: a for n, a in after.items() if n != NAME} == {n: a for n, a in before.items() if n != NAME}
    assert (served.conf_dir / "macula.conf").read_text() == MACULA_CONF_AFTER
    assert (served.conf_dir / "printer.conf").read_text() == PRINTER_CONF_AFTER
    for name, text in SKIPPED.items():
        assert (served.conf_dir / name).read_text() == text
    assert served.dnsmasq.restarts == 1
    assert result.stdout.splitlines()[-1] == (
        f"update-bootstrap-dns: removed 3 line(s) for {NAME} (1 deleted, 2 edited) "
        f"in 2 file(s) of {served.conf_dir}; dnsmasq restarted"
    )
    assert f"{served.conf_dir}/macula.conf:2: address=/bootstrap.macula.local/127.0.0.2" in result.stdout


def test_keeps_a_backup_of_each_changed_file_where_dnsmasq_does_not_read_it(served: Served):
    result = run_script(served.conf_dir, served.env)

    assert result.returncode == 0, result.stderr
    backups = sorted(p for p in served.conf_dir.glob(".*.bak"))
    assert [p.name.split(".")[1] for p in backups] == ["macula", "printer"]
    assert backups[0].read_text() == MACULA_CONF
    assert backups[1].read_text() == PRINTER_CONF
    for backup in backups:
        assert f"to {backup}" in result.stdout
    # The backups still hold the override, and dnsmasq, restarted, does not answer it.
    assert served.dnsmasq.query(NAME) == ["127.0.0.9"]


def test_a_second_run_changes_nothing_and_restarts_nothing(served: Served):
    assert run_script(served.conf_dir, served.env).returncode == 0
    files = snapshot(served.conf_dir)
    answers = served.answers()

    result = run_script(served.conf_dir, served.env)

    assert result.returncode == 0, result.stderr
    *notes, summary = result.stdout.splitlines()
    assert summary == f"update-bootstrap-dns: nothing to do for {NAME}: no record for it in {served.conf_dir}"
    # Only the reminder that the parent domain's record still covers the name.
    assert [note.split(": ")[1] for note in notes] == ["note"]
    assert snapshot(served.conf_dir) == files
    assert served.dnsmasq.restarts == 1
    assert served.answers() == answers


def test_a_host_without_the_directory_is_left_alone(tmp_path: Path):
    missing = tmp_path / "dnsmasq.d"

    result = run_script(missing, {"DNSMASQ_RESTART_COMMAND": "echo restarted; exit 1"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"update-bootstrap-dns: nothing to do for {NAME}: {missing} does not exist\n"
    assert not missing.exists()


def test_a_host_without_the_override_is_left_alone(conf_dir: Path):
    (conf_dir / "other.conf").write_text("address=/macula.local/127.0.0.9\n# bootstrap.macula.local\n")
    files = snapshot(conf_dir)

    result = run_script(conf_dir, {"DNSMASQ_RESTART_COMMAND": "echo restarted; exit 1"})

    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert snapshot(conf_dir) == files


def test_a_user_without_root_or_sudo_gets_a_clear_error_and_nothing_changes(
    served: Served, users: LoginUsers
):
    files = snapshot(served.conf_dir)

    result = run_script(served.conf_dir, served.env, as_user=users.without_sudo)

    assert result.returncode == 1
    assert result.stderr == (
        "update-bootstrap-dns: needs root or passwordless sudo to edit "
        f"{served.conf_dir}/macula.conf (sudo: a password is required)\n"
    )
    assert snapshot(served.conf_dir) == files
    assert served.dnsmasq.restarts == 0
    assert served.dnsmasq.query(NAME) == ["127.0.0.2"]


def test_a_change_dnsmasq_rejects_is_undone_and_not_restarted(served: Served):
    files = snapshot(served.conf_dir)
    # Accepts the files as they are and rejects them once the override is gone, like a dnsmasq that
    # would not start on the result.
    check = (
        'grep -q "^address=/bootstrap.macula.local/127.0.0.2$" "$1/macula.conf" || '
        '{ echo "dnsmasq: bad option at line 2 of $1/macula.conf" >&2; exit 1; }'
    )

    result = run_script(served.conf_dir, {**served.env, "DNSMASQ_TEST_COMMAND": check})

    assert result.returncode == 1
    assert "dnsmasq --test rejects" in result.stderr
    assert f"dnsmasq: bad option at line 2 of {served.conf_dir}/macula.conf" in result.stderr
    assert snapshot(served.conf_dir) == files
    assert served.dnsmasq.restarts == 0


def test_a_failed_restart_puts_the_files_back(served: Served):
    files = snapshot(served.conf_dir)
    failing = 'echo "Job for dnsmasq.service failed because the control process exited" >&2; exit 1'

    result = run_script(served.conf_dir, {"DNSMASQ_RESTART_COMMAND": failing})

    assert result.returncode == 1
    assert "restarting dnsmasq (DNSMASQ_RESTART_COMMAND) failed" in result.stderr
    assert "Job for dnsmasq.service failed" in result.stderr
    assert snapshot(served.conf_dir) == files
    assert served.dnsmasq.query(NAME) == ["127.0.0.2"]


FORMS = """\
# every form dnsmasq has for one name: bootstrap.macula.local
address=/bootstrap.macula.local/127.0.0.2
  address = /BOOTSTRAP.Macula.Local./127.0.0.2   # case, trailing dot, spaces
address=/.bootstrap.macula.local/127.0.0.3
address=/a.macula.local/bootstrap.macula.local/b.macula.local/127.0.0.4
server=/bootstrap.macula.local/10.0.0.1
server=/bootstrap.macula.local/other.example/10.0.0.1#5353
local=/bootstrap.macula.local/
host-record=bootstrap.macula.local,127.0.0.2,fd00::2
host-record=printer.macula.local, bootstrap.macula.local,127.0.0.6,300
cname=alias1.macula.local,bootstrap.macula.local,alias2.macula.local,printer.macula.local,600
interface-name=bootstrap.macula.local,lo/4
txt-record=bootstrap.macula.local,hello
mx-host=bootstrap.macula.local,mail.macula.local,10
# kept: subdomains, wildcards, parents, longer names, targets, quoted values
address=/*.bootstrap.macula.local/127.0.0.8
address=/*bootstrap.macula.local/127.0.0.8
address=/xbootstrap.macula.local/127.0.0.7
address=/bootstrap.macula.local.example/127.0.0.7
address=/macula.local/127.0.0.9
host-record=bootstrap.macula.localhost,127.0.0.7
cname=www.macula.local,bootstrap.macula.local
txt-record=info.macula.local,"bootstrap.macula.local moved"
"""
FORMS_AFTER = """\
# every form dnsmasq has for one name: bootstrap.macula.local
address=/a.macula.local/b.macula.local/127.0.0.4
server=/other.example/10.0.0.1#5353
host-record=printer.macula.local,127.0.0.6,300
cname=alias1.macula.local,alias2.macula.local,printer.macula.local,600
# kept: subdomains, wildcards, parents, longer names, targets, quoted values
address=/*.bootstrap.macula.local/127.0.0.8
address=/*bootstrap.macula.local/127.0.0.8
address=/xbootstrap.macula.local/127.0.0.7
address=/bootstrap.macula.local.example/127.0.0.7
address=/macula.local/127.0.0.9
host-record=bootstrap.macula.localhost,127.0.0.7
cname=www.macula.local,bootstrap.macula.local
txt-record=info.macula.local,"bootstrap.macula.local moved"
"""


def test_every_form_of_record_for_the_name_goes_and_nothing_else(conf_dir: Path):
    require_tool("dnsmasq")
    (conf_dir / "forms.conf").write_text(FORMS)

    result = run_script(conf_dir, {"DNSMASQ_RESTART_COMMAND": "true"})

    assert result.returncode == 0, result.stderr
    assert (conf_dir / "forms.conf").read_text() == FORMS_AFTER
    assert "removed 13 line(s) for bootstrap.macula.local (9 deleted, 4 edited)" in result.stdout
    # It points out what still covers or names the host, without touching it.
    notes = [line for line in result.stdout.splitlines() if ": note: " in line]
    assert [note.split(":")[3] for note in notes] == ["17", "20", "22", "23"]
    assert "still covers" in notes[0]
    assert "still covers" in notes[1]
    assert "still names" in notes[2]
    assert "quoted" in notes[3]
    # The result is a configuration dnsmasq accepts (the script checked it with dnsmasq --test).
    assert "rejects" not in result.stdout + result.stderr


def test_keeps_owner_mode_and_symlinks_of_the_files_it_edits(conf_dir: Path, tmp_path: Path):
    require_root()
    real = tmp_path / "real.conf"
    real.write_text(MACULA_CONF)
    real.chmod(0o640)
    os.chown(real, 65534, 0)  # nobody:root
    (conf_dir / "macula.conf").symlink_to(real)

    result = run_script(conf_dir, {"DNSMASQ_RESTART_COMMAND": "true", "DNSMASQ_TEST_COMMAND": "true"})

    assert result.returncode == 0, result.stderr
    assert (conf_dir / "macula.conf").is_symlink()
    assert real.read_text() == MACULA_CONF_AFTER
    assert (real.stat().st_mode & 0o777, real.stat().st_uid) == (0o640, 65534)


@pytest.mark.parametrize(
    "args",
    [("bootstrap.macula.local;reboot", "/etc/dnsmasq.d"), ("*.macula.local",), ("a", "b", "c")],
    ids=["not-a-name", "wildcard", "too-many"],
)
def test_bad_arguments_are_refused(tmp_path: Path, args: tuple[str, ...]):
    result = run_script(tmp_path, {"DNSMASQ_RESTART_COMMAND": "exit 1"}, *args)

    assert result.returncode == 2
    assert result.stderr.strip()

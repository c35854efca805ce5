"""scripts/update-bootstrap-dns.sh against a real dnsmasq on 127.0.0.1: the override goes, the rest stays.

Each test lays out dnsmasq's files the way a real host does (a main file, conf-dir with its filters,
conf-file includes, addn-hosts and hostsdir), starts dnsmasq on them and runs the script's command text
(the text components/dns_override.py hands to Pulumi). The script finds that dnsmasq through its pid
file, reads its command line, and restarts it through --restart-command, which also counts the restarts.
A second dnsmasq stands in for the LAN's real DNS: the host's dnsmasq forwards macula.local to it, so once
the override is gone the name resolves to the LAN address, as it does on the real host. `dnsmasq --test`
and dig are the real programs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shell_scripts import script_command
from tests.dnsmasq import Dnsmasq, free_port
from tests.sshd import LoginUser, LoginUsers, login_users, require_root, run_command_text, shared_temp_dir
from tests.system_programs import require_tool

NAME = "bootstrap.macula.local"
LAN_ADDRESS = "192.0.2.51"  # what the LAN's DNS answers for NAME
SELF = "update-bootstrap-dns"


@dataclass
class Host:
    """The DNS host's dnsmasq files under `root`, and the dnsmasq that reads them."""

    root: Path
    lan_dns_port: int
    dnsmasq: Dnsmasq | None = None

    @property
    def main_file(self) -> Path:
        return self.root / "dnsmasq.conf"

    @property
    def conf_dir(self) -> Path:
        return self.root / "dnsmasq.d"

    def write(self, files: dict[str, str]) -> None:
        """Writes files under root (paths relative to it), with {root} and {lan} filled in."""
        for relative, text in files.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.format(root=self.root, lan=f"127.0.0.1#{self.lan_dns_port}"))
            path.chmod(0o644)

    def start(self, *options: str, conf_file: bool = True) -> Dnsmasq:
        self.dnsmasq = Dnsmasq(
            self.root.parent / f"{self.root.name}-state",
            None,
            free_port(),
            conf_file=self.main_file if conf_file else None,
            options=options,
        )
        self.dnsmasq.start()
        return self.dnsmasq

    def files(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()
        }

    def command(self, *args: str, restart_command: str | None = None) -> str:
        """The command text Pulumi runs on the DNS host, aimed at this host's dnsmasq."""
        assert self.dnsmasq is not None
        restart = restart_command if restart_command is not None else self.dnsmasq.restart_command
        return dns_command("--pid-file", str(self.dnsmasq.pid_file), "--restart-command", restart, *args)

    def run(
        self, *args: str, restart_command: str | None = None, as_user: LoginUser | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_command_text(self.command(*args, restart_command=restart_command), {}, as_user)

    def answer(self, name: str = NAME) -> list[str]:
        assert self.dnsmasq is not None
        return self.dnsmasq.query(name)


def dns_command(*args: str) -> str:
    return script_command("update-bootstrap-dns.sh", *args)


@pytest.fixture(scope="module")
def lan_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The LAN's real DNS (PowerDNS on the real LAN): a dnsmasq answering macula.local names."""
    require_tool("dnsmasq")
    require_tool("dig")
    root = tmp_path_factory.mktemp("lan-dns")
    (root / "lan.conf").write_text(
        f"address=/{NAME}/{LAN_ADDRESS}\naddress=/printer.macula.local/192.0.2.60\n"
        "address=/legacy.macula.local/192.0.2.61\n"
    )
    server = Dnsmasq(root / "state", root, free_port())
    server.start()
    yield server.port
    server.stop()


@pytest.fixture
def host(lan_dns: int) -> Iterator[Host]:
    """A root-owned directory other users may read, like /etc, for one DNS host's dnsmasq files."""
    parent = shared_temp_dir("macula-dns-host-")
    root = parent / "etc"
    root.mkdir(mode=0o755)
    served = Host(root, lan_dns)
    yield served
    if served.dnsmasq is not None:
        served.dnsmasq.stop()
    shutil.rmtree(parent)


@pytest.fixture(scope="module")
def users() -> Iterator[LoginUsers]:
    with login_users() as created:
        yield created


# A Fedora-like main file (conf-dir with exclusions) that also includes a file and reads hosts files.
MAIN = """\
# The DNS host's dnsmasq: forwards macula.local to the LAN's DNS.
server=/macula.local/{lan}
conf-dir={root}/dnsmasq.d,.rpmnew,.rpmsave
conf-dir={root}/only-conf.d,*.conf
conf-file={root}/macula-include.conf
addn-hosts={root}/hosts.d
hostsdir={root}/hostsdir
address=/bootstrap.macula.local/127.0.0.2   # the runbook's stub
"""
# The same without its last line, the override.
MAIN_AFTER = MAIN[: MAIN.rindex("address=")]
# Records for other names, a forward of the name itself, and comments stay, byte for byte; the last line
# has no final newline, and keeps none.
MACULA_CONF = """\
#address=/bootstrap.macula.local/127.0.0.2   an old copy, commented out, stays
server=/bootstrap.macula.local/{lan}
rev-server=192.0.2.0/24,{lan}
host-record=printer.macula.local,bootstrap.macula.local,127.0.0.2  # bootstrap.macula.local was here
address=/xbootstrap.macula.local/127.0.0.7"""
MACULA_CONF_AFTER = """\
#address=/bootstrap.macula.local/127.0.0.2   an old copy, commented out, stays
server=/bootstrap.macula.local/{lan}
rev-server=192.0.2.0/24,{lan}
host-record=printer.macula.local,127.0.0.2  # bootstrap.macula.local was here
address=/xbootstrap.macula.local/127.0.0.7"""
INCLUDE = "address=/legacy.macula.local/Bootstrap.Macula.Local./127.0.0.2\n"
INCLUDE_AFTER = "address=/legacy.macula.local/127.0.0.2\n"
HOSTS = "127.0.0.2\tbootstrap.macula.local  stub.macula.local # the stub\n127.0.0.3 bootstrap.macula.local\n"
HOSTS_AFTER = "127.0.0.2\tstub.macula.local # the stub\n"
STUB = "address=/bootstrap.macula.local/127.0.0.2\n"
# Files dnsmasq does not read: its filters skip them, so the script must leave them alone too.
NOT_READ = {
    "dnsmasq.d/macula.conf.rpmnew": STUB,
    "dnsmasq.d/.macula.conf.swp": STUB,
    "dnsmasq.d/macula.conf~": STUB,
    "dnsmasq.d/#macula.conf#": STUB,
    "only-conf.d/notes.txt": STUB,
    "hostsdir/.hosts.swp": "127.0.0.2 bootstrap.macula.local\n",
    "unread.d/stub.conf": STUB,
}
LAYOUT = {
    "dnsmasq.conf": MAIN,
    "dnsmasq.d/macula.conf": MACULA_CONF,
    "only-conf.d/stub.conf": STUB,
    "macula-include.conf": INCLUDE,
    "hosts.d/stub": HOSTS,
    "hostsdir/stub": "127.0.0.4 BOOTSTRAP.macula.local\n",
    **NOT_READ,
}


def test_removes_every_override_dnsmasq_reads_and_the_name_resolves_through_the_lan_dns(host: Host):
    host.write(LAYOUT)
    dnsmasq = host.start()
    assert host.answer() == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]

    result = host.run()

    assert result.returncode == 0, result.stderr
    assert host.answer() == [LAN_ADDRESS]
    assert host.answer("printer.macula.local") == ["127.0.0.2"]
    assert host.answer("legacy.macula.local") == ["127.0.0.2"]
    assert host.answer("stub.macula.local") == ["127.0.0.2"]
    expected = {
        "dnsmasq.conf": MAIN_AFTER,
        "dnsmasq.d/macula.conf": MACULA_CONF_AFTER,
        "only-conf.d/stub.conf": "",
        "macula-include.conf": INCLUDE_AFTER,
        "hosts.d/stub": HOSTS_AFTER,
        "hostsdir/stub": "",
        **NOT_READ,
    }
    formatted = {
        k: v.format(root=host.root, lan=f"127.0.0.1#{host.lan_dns_port}") for k, v in expected.items()
    }
    assert host.files() == {k: v.encode() for k, v in formatted.items()}
    assert dnsmasq.restarts == 1
    assert result.stdout.splitlines()[-1] == (
        f"{SELF}: removed 7 line(s) for {NAME} (4 deleted, 3 edited) in 6 file(s); restarted dnsmasq "
        f"({dnsmasq.restart_command}), which answers {LAN_ADDRESS} for it"
    )
    assert f"{host.main_file}:8: address=/bootstrap.macula.local/127.0.0.2  (line removed)" in result.stdout
    assert result.stderr == ""


def test_debians_conf_dir_on_the_command_line_with_its_exclusions(host: Host):
    # Debian's init script starts dnsmasq with -7 DIR,.dpkg-dist,.dpkg-old,.dpkg-new.
    host.write(
        {
            "dnsmasq.conf": "server=/macula.local/{lan}\n",
            "dnsmasq.d/macula": STUB,
            "dnsmasq.d/macula.dpkg-old": STUB,
            "dnsmasq.d/.dpkg-new": STUB,  # skipped as a dot file, not as a suffix
        }
    )
    dnsmasq = host.start("-7", f"{host.conf_dir},.dpkg-dist,.dpkg-old,.dpkg-new")

    result = host.run()

    assert result.returncode == 0, result.stderr
    assert host.answer() == [LAN_ADDRESS]
    assert (host.conf_dir / "macula").read_text() == ""
    assert (host.conf_dir / "macula.dpkg-old").read_text() == STUB
    assert (host.conf_dir / ".dpkg-new").read_text() == STUB
    assert dnsmasq.restarts == 1


def test_a_second_run_changes_nothing_and_restarts_nothing(host: Host):
    host.write(LAYOUT)
    dnsmasq = host.start()
    assert host.run().returncode == 0
    files = host.files()

    result = host.run()

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{SELF}: nothing to do for {NAME}: no file dnsmasq reads has a record for it, and dnsmasq answers "
        f"{LAN_ADDRESS}\n"
    )
    assert host.files() == files
    assert dnsmasq.restarts == 1


def test_a_configuration_broken_before_the_change_is_left_alone_and_named(host: Host):
    host.write(LAYOUT)
    dnsmasq = host.start()
    # The typo comes after dnsmasq started, as on a host where someone edited a file and never restarted
    # dnsmasq. A restart now would fail and leave the LAN without DNS.
    host.write({"only-conf.d/typo.conf": "adress=/printer.macula.local/192.0.2.9\n"})
    files = host.files()

    result = host.run()

    assert result.returncode == 1
    broken = host.root / "only-conf.d/typo.conf"
    assert f"dnsmasq's configuration is broken already, before any change (in {broken})" in result.stderr
    assert f"bad option at line 1 of {broken}" in result.stderr
    assert "Nothing changed and dnsmasq was not restarted" in result.stderr
    assert host.files() == files
    assert dnsmasq.restarts == 0
    assert host.answer() == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def test_a_failed_restart_puts_the_files_back_and_dnsmasq_runs_again(host: Host, tmp_path: Path):
    host.write(LAYOUT)
    dnsmasq = host.start()
    files = host.files()
    # The first restart leaves dnsmasq stopped and fails, as systemd's does when dnsmasq will not start;
    # the next one, on the files put back, works.
    failed_once = tmp_path / "failed-once"
    restart = (
        f"if [ -e {failed_once} ]; then {dnsmasq.restart_command}; else touch {failed_once}; "
        f"{dnsmasq.stop_command}; echo 'Job for dnsmasq.service failed' >&2; exit 1; fi"
    )

    result = host.run(restart_command=restart)

    assert result.returncode == 1
    assert f"restarting dnsmasq ({restart}) failed" in result.stderr
    assert "Job for dnsmasq.service failed" in result.stderr
    assert result.stderr.rstrip().endswith("the files are back as they were and dnsmasq runs on them again")
    assert host.files() == files
    assert dnsmasq.running
    assert host.answer() == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def test_a_stopped_dnsmasq_is_never_started(host: Host):
    host.write(LAYOUT)
    dnsmasq = host.start()
    assert subprocess.run(shlex.split(dnsmasq.stop_command), check=False).returncode == 0
    files = host.files()

    result = host.run()

    assert result.returncode == 1
    assert result.stderr == (
        f"{SELF}: dnsmasq is not running: its pid file {dnsmasq.pid_file} does not exist. It was not started "
        "and nothing changed; start it (or set dnsFix.enabled to false if this host no longer runs dnsmasq)\n"
    )
    assert dnsmasq.restarts == 0
    assert not dnsmasq.running
    assert host.files() == files


def test_an_answer_that_stays_the_stub_fails_and_names_where_it_comes_from(host: Host):
    host.write(
        {
            "dnsmasq.conf": "server=/macula.local/{lan}\nconf-dir={root}/dnsmasq.d\n",
            "dnsmasq.d/macula.conf": f"{STUB}address=/macula.local/127.0.0.9\n",
        }
    )
    dnsmasq = host.start()

    result = host.run()

    # The exact override is gone, but the parent domain's record, which answers other names too, stays:
    # dnsmasq answers with another loopback address, and the run fails, naming that record.
    assert result.returncode == 1
    assert host.answer() == ["127.0.0.9"]
    assert (host.conf_dir / "macula.conf").read_text() == "address=/macula.local/127.0.0.9\n"
    assert dnsmasq.restarts == 1
    assert (
        f"removed 1 line(s) for {NAME} (1 deleted, 0 edited) in 1 file(s) and restarted dnsmasq, but it "
        f"still answers {NAME} with 127.0.0.9; what still names it: {host.conf_dir}/macula.conf:2: "
        "macula.local in "
        f"address=/macula.local/127.0.0.9 still covers {NAME}"
    ) in result.stderr

    again = host.run()

    assert again.returncode == 1
    assert f"still answers {NAME} with 127.0.0.9, from no record this script can remove" in again.stderr
    assert again.stderr.rstrip().endswith("Nothing changed")
    assert dnsmasq.restarts == 1


def test_an_override_on_dnsmasqs_command_line_is_named_and_nothing_changes(host: Host):
    host.write({"dnsmasq.conf": f"server=/macula.local/{{lan}}\n{STUB}"})
    dnsmasq = host.start(f"--address=/{NAME}/127.0.0.2")
    files = host.files()

    result = host.run()

    assert result.returncode == 1
    assert f"dnsmasq's command line (pid {dnsmasq.pid_file.read_text().strip()}) answers for {NAME}" in (
        result.stderr
    )
    assert f"address=/{NAME}/127.0.0.2" in result.stderr
    assert result.stderr.rstrip().endswith("Nothing changed")
    assert host.files() == files
    assert dnsmasq.restarts == 0


def test_hosts_files_and_expand_hosts_short_names(host: Host):
    # A dotless name in a hosts file answers NAME through expand-hosts; it also answers the short name, so
    # it is named, not removed.
    host.write(
        {
            "dnsmasq.conf": "server=/macula.local/{lan}\naddn-hosts={root}/hosts\nexpand-hosts\n"
            "domain=macula.local\n",
            "hosts": "127.0.0.5 bootstrap #the short name\n",
        }
    )
    host.start()
    assert host.answer() == ["127.0.0.5"]

    result = host.run()

    assert result.returncode == 1
    assert f"{host.root}/hosts:1: 127.0.0.5 bootstrap answers {NAME} too (expand-hosts with its domain)" in (
        result.stderr
    )
    assert (host.root / "hosts").read_text() == "127.0.0.5 bootstrap #the short name\n"


FORMS = """\
# every form dnsmasq has for one name: bootstrap.macula.local
address=/bootstrap.macula.local/127.0.0.2
  address = /BOOTSTRAP.Macula.Local./127.0.0.2   # case, trailing dot, spaces
address=/.bootstrap.macula.local/127.0.0.3
address=/a.macula.local/bootstrap.macula.local/b.macula.local/127.0.0.4
local=/bootstrap.macula.local/
server=/c.macula.local/bootstrap.macula.local/
host-record=bootstrap.macula.local,127.0.0.2,fd00::2
host-record=printer.macula.local, bootstrap.macula.local,127.0.0.6,300
cname=alias1.macula.local,bootstrap.macula.local,alias2.macula.local,printer.macula.local,600
interface-name=bootstrap.macula.local,lo/4
txt-record=bootstrap.macula.local,hello
mx-host=bootstrap.macula.local,mail.macula.local,10
# kept: forwards, subdomains, wildcards, parents, longer names, targets, quoted values
server=/bootstrap.macula.local/{lan}
server=/bootstrap.macula.local/other.example/10.0.0.1#5353
address=/*.bootstrap.macula.local/127.0.0.8
address=/*bootstrap.macula.local/127.0.0.8
address=/xbootstrap.macula.local/127.0.0.7
address=/bootstrap.macula.local.example/127.0.0.7
address=/macula.local/192.0.2.9
host-record=bootstrap.macula.localhost,127.0.0.7
cname=www.macula.local,bootstrap.macula.local
txt-record=info.macula.local,"bootstrap.macula.local moved"
local=/bootstrap.macula.local/{lan}
"""
FORMS_AFTER = """\
# every form dnsmasq has for one name: bootstrap.macula.local
address=/a.macula.local/b.macula.local/127.0.0.4
server=/c.macula.local/
host-record=printer.macula.local,127.0.0.6,300
cname=alias1.macula.local,alias2.macula.local,printer.macula.local,600
# kept: forwards, subdomains, wildcards, parents, longer names, targets, quoted values
server=/bootstrap.macula.local/{lan}
server=/bootstrap.macula.local/other.example/10.0.0.1#5353
address=/*.bootstrap.macula.local/127.0.0.8
address=/*bootstrap.macula.local/127.0.0.8
address=/xbootstrap.macula.local/127.0.0.7
address=/bootstrap.macula.local.example/127.0.0.7
address=/macula.local/192.0.2.9
host-record=bootstrap.macula.localhost,127.0.0.7
cname=www.macula.local,bootstrap.macula.local
txt-record=info.macula.local,"bootstrap.macula.local moved"
local=/bootstrap.macula.local/{lan}
"""


def test_every_form_of_record_for_the_name_goes_and_nothing_else(host: Host):
    host.write({"dnsmasq.conf": "conf-file={root}/forms.conf\n", "forms.conf": FORMS})
    host.start()

    result = host.run()

    assert result.returncode == 0, result.stderr
    lan = f"127.0.0.1#{host.lan_dns_port}"
    assert (host.root / "forms.conf").read_text() == FORMS_AFTER.format(lan=lan)
    assert "removed 12 line(s) for bootstrap.macula.local (8 deleted, 4 edited)" in result.stdout
    # The forward for the name now answers: the LAN's address.
    assert host.answer() == [LAN_ADDRESS]
    # It points out what still covers or names the host, without touching it; forwards are not named.
    notes = [line for line in result.stdout.splitlines() if ": note: " in line]
    assert [note.split(":")[3] for note in notes] == ["18", "21", "23", "24"]
    assert "still covers" in notes[0]
    assert "still covers" in notes[1]
    assert "still names" in notes[2]
    assert "still names" in notes[3]


def test_keeps_owner_mode_and_symlinks_of_the_files_it_edits(host: Host, tmp_path: Path):
    require_root()
    real = tmp_path / "real.conf"
    real.write_text(STUB)
    real.chmod(0o640)
    os.chown(real, 65534, 0)  # nobody:root
    host.write({"dnsmasq.conf": "server=/macula.local/{lan}\nconf-dir={root}/dnsmasq.d\n"})
    host.conf_dir.mkdir()
    (host.conf_dir / "macula.conf").symlink_to(real)
    host.start()

    result = host.run()

    assert result.returncode == 0, result.stderr
    assert (host.conf_dir / "macula.conf").is_symlink()
    assert real.read_text() == ""
    assert (real.stat().st_mode & 0o777, real.stat().st_uid) == (0o640, 65534)


def test_a_user_without_root_or_sudo_gets_a_clear_error_and_nothing_changes(host: Host, users: LoginUsers):
    host.write(LAYOUT)
    dnsmasq = host.start()
    files = host.files()

    result = host.run(as_user=users.without_sudo)

    assert result.returncode == 1
    assert result.stderr.startswith(f"{SELF}: needs root or passwordless sudo to ")
    assert result.stderr.rstrip().endswith("(sudo: a password is required); nothing changed")
    assert host.files() == files
    assert dnsmasq.restarts == 0


def run_until_then_terminate(
    host: Host, restart: str, marker: Path, *, process_group: bool
) -> tuple[int, str]:
    """Runs the script until the restart command creates `marker`, then sends SIGTERM: to the script and
    everything it started (as a terminal's Ctrl-C or a stopped service does), or to the script alone."""
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"exec {host.command(restart_command=restart)}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert time.monotonic() < deadline, f"the restart command never made {marker}"
            time.sleep(0.05)
        if process_group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return process.returncode, stderr


def test_an_interrupted_run_puts_the_files_back(host: Host, tmp_path: Path):
    host.write(LAYOUT)
    dnsmasq = host.start()
    files = host.files()
    # The first restart hangs (a stuck systemctl, say); the run is interrupted there.
    hung = tmp_path / "hung"
    restart = f"if [ -e {hung} ]; then {dnsmasq.restart_command}; else touch {hung}; exec sleep 60; fi"
    returncode, stderr = run_until_then_terminate(host, restart, hung, process_group=True)

    assert returncode != 0
    assert f"{SELF}: interrupted: the files are back as they were" in stderr
    assert host.files() == files
    assert dnsmasq.running
    assert host.answer() == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def test_several_dnsmasq_and_no_pid_file_is_refused(host: Host):
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here, so the script would ask it for dnsmasq.service first")
    host.write(LAYOUT)
    host.start()
    files = host.files()

    # The LAN's stand-in and the host's dnsmasq both run.
    result = run_command_text(dns_command(), {})

    assert result.returncode == 1
    assert "dnsmasq processes run here (pids " in result.stderr
    assert "say which one answers the LAN with dnsFix.pidFile (--pid-file); nothing changed" in result.stderr
    assert host.files() == files


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bootstrap.macula.local;reboot",), "'bootstrap.macula.local;reboot' is not a host name"),
        (("*.macula.local",), "'*.macula.local' is not a host name"),
        (("--", "-bootstrap.macula.local"), "'-bootstrap.macula.local' is not a host name"),
        (("a.local", "/etc/dnsmasq.d"), "takes one HOSTNAME, got 2"),
        (("--conf-dir", "/etc"), "unknown option: --conf-dir"),
        (("--pid-file",), "--pid-file needs a value"),
        (("--restart-command", ""), "--restart-command is empty"),
        (("--pid-file=",), "--pid-file is empty"),
        (("--pid-file", "run/dnsmasq.pid"), "--pid-file run/dnsmasq.pid is not an absolute path"),
    ],
    ids=[
        "not-a-name",
        "wildcard",
        "option-like",
        "two-names",
        "unknown-option",
        "no-value",
        "empty",
        "empty=",
        "relative-pid-file",
    ],
)
def test_bad_arguments_get_exit_2_and_a_message(args: tuple[str, ...], message: str):
    result = run_command_text(dns_command(*args), {})

    assert result.returncode == 2
    assert result.stderr.startswith(f"{SELF}: {message}")
    assert result.stdout == ""


def test_help_works_as_the_program_runs_it():
    result = run_command_text(dns_command("--help"), {})

    assert result.returncode == 0
    assert result.stdout.startswith(
        "Usage: update-bootstrap-dns.sh [--restart-command CMD] [--pid-file FILE]"
    )


def test_a_signal_during_the_undo_does_not_cut_it_short(host: Host, tmp_path: Path):
    host.write(LAYOUT)
    dnsmasq = host.start()
    files = host.files()
    # The restart on the change leaves dnsmasq stopped and fails; the one that starts it again on the
    # files put back takes a while, and a second TERM arrives meanwhile.
    failed_once, starting = tmp_path / "failed-once", tmp_path / "starting"
    restart = (
        f"if [ -e {failed_once} ]; then touch {starting}; sleep 1; {dnsmasq.restart_command}; "
        f"else touch {failed_once}; {dnsmasq.stop_command}; exit 1; fi"
    )
    returncode, stderr = run_until_then_terminate(host, restart, starting, process_group=False)

    assert returncode == 1
    assert stderr.rstrip().endswith("the files are back as they were and dnsmasq runs on them again")
    assert host.files() == files
    assert dnsmasq.running
    assert host.answer() == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def test_an_address_still_answered_by_a_conf_script_fails_the_run(host: Host):
    # The hosts entry (tab-separated, as in many /etc/hosts) goes, but a conf-script, whose output this
    # script cannot edit, gives the same address.
    host.write(
        {
            "dnsmasq.conf": "server=/macula.local/{lan}\naddn-hosts={root}/hosts\nconf-script=/bin/echo "
            f"host-record={NAME},192.0.2.10\n",
            "hosts": f"192.0.2.10\t{NAME}\n",
        }
    )
    host.start()

    result = host.run()

    assert result.returncode == 1
    assert f"but it still answers {NAME} with 192.0.2.10" in result.stderr
    assert f"conf-script=/bin/echo host-record={NAME},192.0.2.10 still names {NAME}" in result.stderr
    assert (host.root / "hosts").read_text() == ""


def test_a_quoted_record_for_the_name_is_named_and_fails_the_run(host: Host):
    host.write(
        {
            "dnsmasq.conf": "server=/macula.local/{lan}\n"
            'address=/"bootstrap.macula.local"/192.0.2.10\n'
            'address=/printer.macula.local/192.0.2.11 # "quotes in a comment are no value"\n',
        }
    )
    host.start()
    files = host.files()

    result = host.run()

    assert result.returncode == 1
    assert f"dnsmasq still answers {NAME} with 192.0.2.10, from no record this script can remove" in (
        result.stderr
    )
    quoted = f'{host.main_file}:2: left as it is (a quoted value): address=/"{NAME}"/192.0.2.10'
    assert quoted in result.stderr
    assert host.files() == files


def test_nxdomain_from_a_parent_domain_dnsmasq_serves_itself_fails_the_run(host: Host):
    # No forward to the LAN's DNS: dnsmasq answers all of macula.local itself.
    host.write({"dnsmasq.conf": f"local=/macula.local/\n{STUB}"})
    host.start()

    result = host.run()

    assert result.returncode == 1
    assert f"answers NXDOMAIN for {NAME} from a parent domain it serves itself" in result.stderr
    assert f"{host.main_file}:1: macula.local in local=/macula.local/ still covers {NAME}" in result.stderr


def test_option_clusters_and_prefixes_on_the_command_line_are_read_as_dnsmasq_reads_them(host: Host):
    # -E7DIR is expand-hosts and conf-dir=DIR; --addn-h is addn-hosts, given twice: one file, edited once.
    host.write(
        {
            "dnsmasq.conf": "server=/macula.local/{lan}\n",
            "dnsmasq.d/macula.conf": STUB,
            "hosts": f"127.0.0.3 {NAME}\n",
        }
    )
    hosts = str(host.root / "hosts")
    dnsmasq = host.start(f"-E7{host.conf_dir}", f"--addn-h={hosts}", "--addn-hosts", hosts)

    result = host.run()

    assert result.returncode == 0, result.stderr
    assert (host.conf_dir / "macula.conf").read_text() == ""
    assert (host.root / "hosts").read_text() == ""
    assert f"removed 2 line(s) for {NAME} (2 deleted, 0 edited) in 2 file(s)" in result.stdout
    assert dnsmasq.restarts == 1

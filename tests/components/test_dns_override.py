"""The DNS fix's exact command text, run over real SSH the way pulumi-command's remote.Command runs it.

A real sshd on 127.0.0.1 (throwaway host key, pinned in known_hosts), a real dnsmasq serving a root-owned
conf dir, and non-root login users, one with passwordless sudo and one without. sshd hands the command text
to the login shell with -c, exactly as for the provider. The DNS fix finds the test's dnsmasq and restarts it
the way the stack's dnsFix.pidFile and dnsFix.restartCommand tell it to on a host where dnsmasq is not
systemd's (through sudo, as systemctl would need). sshd's SetEnv gives the sessions a ufw that only
pretends (UFW="ufw --dry-run").
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from components.dns_override import dns_fix_command, firewall_command
from tests.dnsmasq import Dnsmasq, free_port
from tests.sshd import LoginUsers, SshServer, login_users, shared_temp_dir, ssh_server
from tests.system_programs import require_tool

NAME = "bootstrap.macula.local"
CONF = """\
# bootstrap.macula.local answered by a local stub, until the DNS fix
address=/bootstrap.macula.local/127.0.0.2
address=/macula.local/192.0.2.9
host-record=other.macula.local,bootstrap.macula.local,127.0.0.2
"""
CONF_AFTER = """\
# bootstrap.macula.local answered by a local stub, until the DNS fix
address=/macula.local/192.0.2.9
host-record=other.macula.local,127.0.0.2
"""
StartSsh = Callable[[dict[str, str]], SshServer]


@pytest.fixture(scope="module")
def users() -> Iterator[LoginUsers]:
    with login_users() as created:
        yield created


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    """A real dnsmasq on a root-owned conf dir, like /etc/dnsmasq.d (0755, files 0644)."""
    require_tool("dnsmasq")
    require_tool("dig")
    conf_dir = shared_temp_dir("macula-dnsmasq.d-")
    (conf_dir / "macula.conf").write_text(CONF)
    (conf_dir / "macula.conf").chmod(0o644)
    server = Dnsmasq(tmp_path / "dnsmasq", conf_dir, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(conf_dir)


@pytest.fixture
def start_ssh(users: LoginUsers) -> Iterator[StartSsh]:
    """Starts an sshd whose sessions get env; stopped after the test."""
    with ExitStack() as servers:
        yield lambda env: servers.enter_context(
            ssh_server([users.with_sudo.name, users.without_sudo.name], env)
        )


@pytest.fixture
def ssh(start_ssh: StartSsh) -> SshServer:
    return start_ssh({})


def conf_file(dnsmasq: Dnsmasq) -> Path:
    assert dnsmasq.conf_dir is not None
    return dnsmasq.conf_dir / "macula.conf"


def fix_command(dnsmasq: Dnsmasq) -> str:
    """The program's command text for a host whose dnsmasq is this one (dnsFix.restartCommand, .pidFile)."""
    return dns_fix_command(NAME, f"sudo -n {dnsmasq.restart_command}", str(dnsmasq.pid_file))


def test_dns_fix_removes_the_override_over_ssh_with_sudo(ssh: SshServer, dnsmasq: Dnsmasq, users: LoginUsers):
    assert dnsmasq.query(NAME) == ["127.0.0.2"]
    other = dnsmasq.query("other.macula.local")

    result = ssh.run(fix_command(dnsmasq), users.with_sudo.name)

    assert result.returncode == 0, result.stderr
    assert dnsmasq.query(NAME) == ["192.0.2.9"]
    assert dnsmasq.query("other.macula.local") == other
    assert conf_file(dnsmasq).read_text() == CONF_AFTER
    stat = conf_file(dnsmasq).stat()
    assert (stat.st_uid, stat.st_mode & 0o777) == (0, 0o644)
    assert [p.name for p in conf_file(dnsmasq).parent.iterdir()] == ["macula.conf"]
    assert dnsmasq.restarts == 1
    assert result.stdout.splitlines()[-1].endswith("which answers 192.0.2.9 for it")


def test_dns_fix_run_again_over_ssh_changes_nothing(ssh: SshServer, dnsmasq: Dnsmasq, users: LoginUsers):
    command = fix_command(dnsmasq)
    assert ssh.run(command, users.with_sudo.name).returncode == 0
    files = conf_file(dnsmasq).read_bytes()

    result = ssh.run(command, users.with_sudo.name)

    assert result.returncode == 0, result.stderr
    assert "nothing to do for bootstrap.macula.local" in result.stdout
    assert conf_file(dnsmasq).read_bytes() == files
    assert dnsmasq.restarts == 1


def test_dns_fix_over_ssh_without_sudo_fails_clearly(ssh: SshServer, dnsmasq: Dnsmasq, users: LoginUsers):
    result = ssh.run(fix_command(dnsmasq), users.without_sudo.name)

    assert result.returncode == 1
    assert result.stderr.startswith("update-bootstrap-dns: needs root or passwordless sudo to ")
    assert result.stderr.endswith("(sudo: a password is required); nothing changed\n")
    assert conf_file(dnsmasq).read_text() == CONF
    assert dnsmasq.restarts == 0
    assert dnsmasq.query(NAME) == ["127.0.0.2"]


def test_a_host_key_other_than_the_pinned_one_is_refused(
    ssh: SshServer, dnsmasq: Dnsmasq, users: LoginUsers, tmp_path: Path
):
    # The client key stands in for a host key that is not the server's.
    other = ssh.client_key.with_suffix(".pub").read_text().split()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{ssh.port} {other[0]} {other[1]}\n")

    result = ssh.run(fix_command(dnsmasq), users.with_sudo.name, known_hosts)

    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr
    assert conf_file(dnsmasq).read_text() == CONF


def test_firewall_command_over_ssh_with_sudo(start_ssh: StartSsh, users: LoginUsers):
    ufw = require_tool("ufw")
    ssh = start_ssh({"UFW": f"{ufw} --dry-run"})

    result = ssh.run(firewall_command(4433), users.with_sudo.name)

    assert result.returncode == 0, result.stderr
    assert "-A ufw-user-input -p udp --dport 4433 -j ACCEPT" in result.stdout
    assert "open-firewall-port: allowed 4433/udp in ufw" in result.stdout


def test_firewall_command_over_ssh_without_sudo_fails_clearly(start_ssh: StartSsh, users: LoginUsers):
    ufw = require_tool("ufw")
    ssh = start_ssh({"UFW": f"{ufw} --dry-run"})

    result = ssh.run(firewall_command(4433), users.without_sudo.name)

    assert result.returncode == 1
    assert "needs root or passwordless sudo to run ufw allow 4433/udp" in result.stderr


def test_firewall_command_over_ssh_on_a_host_without_ufw(start_ssh: StartSsh, users: LoginUsers):
    ssh = start_ssh({"UFW": "/nonexistent/ufw"})

    result = ssh.run(firewall_command(4433), users.without_sudo.name)

    assert result.returncode == 0, result.stderr
    assert "no ufw: nothing to open for 4433/udp" in result.stdout

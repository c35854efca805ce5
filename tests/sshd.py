"""A real OpenSSH server on 127.0.0.1 and throwaway login users, for running command text the way
pulumi-command's remote.Command does: sshd hands the text to the login user's shell as `SHELL -c TEXT`.

`login_users()` creates two non-root users for one test module: one with passwordless sudo (a file in
/etc/sudoers.d, checked with `visudo -cf`) and one without. `SshServer` runs `sshd -D -e` on a free
loopback port with a throwaway ed25519 host key, and `SshServer.run()` connects with the real `ssh`
client, a throwaway client key, BatchMode and StrictHostKeyChecking=yes against a known_hosts file that
pins that host key, as the program's `dnsFix.hostKey` does on the real host. Creating users and running
sshd need root: `require_root()` skips the test without it, and fails it in CI.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.system_programs import require_tool

TIMEOUT = 30


def require_root() -> None:
    if os.geteuid() == 0:
        return
    message = "needs root (creates users, a sudoers file and runs sshd)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def shared_temp_dir(prefix: str) -> Path:
    """A root-owned temp dir the test users can enter (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class LoginUser:
    name: str
    uid: int
    gid: int
    home: str

    def run(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Runs a program as this user, with none of root's groups and a login-like environment."""
        return subprocess.run(
            args,
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            env={"HOME": self.home, "USER": self.name, "PATH": "/usr/local/bin:/usr/bin:/bin", **(env or {})},
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )


def run_command_text(
    command: str, env: dict[str, str], as_user: LoginUser | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs command text under /bin/sh -c, as sshd runs a remote command: as `as_user`, or as root."""
    if as_user is not None:
        return as_user.run(["/bin/sh", "-c", command], env)
    return subprocess.run(
        ["/bin/sh", "-c", command],
        env={"PATH": os.environ["PATH"], **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@dataclass(frozen=True)
class LoginUsers:
    with_sudo: LoginUser
    without_sudo: LoginUser


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")


@contextmanager
def login_users() -> Iterator[LoginUsers]:
    """Two new users, named uniquely so that runs on one machine do not collide, removed afterwards."""
    require_root()
    useradd, userdel, visudo = (require_tool(t) for t in ("useradd", "userdel", "visudo"))
    require_tool("sudo")
    suffix = secrets.token_hex(3)
    names = (f"macula-ci-{suffix}", f"macula-nosudo-{suffix}")
    # Files in /etc/sudoers.d whose names contain a dot are not read, so the draft is inert.
    sudoers = Path(f"/etc/sudoers.d/macula-ci-{suffix}")
    draft = sudoers.with_name(f"{sudoers.name}.draft")
    created: list[str] = []
    try:
        for name in names:
            # "*" instead of useradd's locked "!": without PAM, sshd refuses accounts it sees as locked.
            _run(useradd, "--create-home", "--shell", "/bin/bash", "--password", "*", name)
            created.append(name)
        draft.write_text(f"{names[0]} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        draft.chmod(0o440)
        _run(visudo, "-c", "-q", "-f", str(draft))
        draft.rename(sudoers)
        with_sudo, without_sudo = (
            LoginUser(u.pw_name, u.pw_uid, u.pw_gid, u.pw_dir) for u in map(pwd.getpwnam, names)
        )
        yield LoginUsers(with_sudo, without_sudo)
    finally:
        draft.unlink(missing_ok=True)
        sudoers.unlink(missing_ok=True)
        for name in created:
            # --force: a session sshd has not finished tearing down must not keep the user around.
            subprocess.run(
                [userdel, "--force", "--remove", name], capture_output=True, timeout=TIMEOUT, check=False
            )


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SshServer:
    def __init__(self, users: list[str], env: dict[str, str] | None = None) -> None:
        require_root()
        self.sshd = require_tool("sshd")
        self.ssh = require_tool("ssh")
        self.keygen = require_tool("ssh-keygen")
        self.users = users
        self.env = env or {}
        self.port = _free_tcp_port()
        self.dir = shared_temp_dir("macula-sshd-")
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.client_key = self.dir / "client_ed25519_key"
        self.known_hosts = self.dir / "known_hosts"
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        for key in (self.host_key, self.client_key):
            _run(self.keygen, "-q", "-t", "ed25519", "-N", "", "-C", key.name, "-f", str(key))
        host_public = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public[0]} {host_public[1]}\n")
        # sshd reads the keys as the login user, so the file must be readable by everyone.
        authorized = self.dir / "authorized_keys"
        authorized.write_text(self.client_key.with_suffix(".pub").read_text())
        authorized.chmod(0o644)
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized}",
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no",
            f"AllowUsers {' '.join(self.users)}",
            "X11Forwarding no",
            "PrintMotd no",
            "LogLevel VERBOSE",
        ]
        lines += [f'SetEnv {key}="{value}"' for key, value in self.env.items()]
        config = self.dir / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        # sshd's privilege separation directory, which the openssh-server package's unit creates at boot.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        _run(self.sshd, "-t", "-f", str(config))
        self._process = subprocess.Popen(
            [self.sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {self.stop()}") from None
                time.sleep(0.01)

    def run(
        self, command_text: str, user: str, known_hosts: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs command_text on the server as user, the way pulumi-command sends it: one string."""
        options = {
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "BatchMode": "yes",
            "StrictHostKeyChecking": "yes",
            "UserKnownHostsFile": str(known_hosts or self.known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "ConnectTimeout": "10",
            "LogLevel": "ERROR",
        }
        args = [self.ssh, "-F", "/dev/null", "-p", str(self.port), "-i", str(self.client_key)]
        for option, value in options.items():
            args += ["-o", f"{option}={value}"]
        return subprocess.run(
            [*args, f"{user}@127.0.0.1", "--", command_text],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def stop(self) -> str:
        """Stops sshd and returns what it logged."""
        log = ""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
            try:
                _, log = self._process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                _, log = self._process.communicate(timeout=TIMEOUT)
            self._process = None
        shutil.rmtree(self.dir, ignore_errors=True)
        return log


@contextmanager
def ssh_server(users: list[str], env: dict[str, str] | None = None) -> Iterator[SshServer]:
    server = SshServer(users, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()

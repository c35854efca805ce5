"""scripts/open-firewall-port.sh: argument checks, hosts without ufw, and ufw itself through sudo.

ufw only ever runs as `ufw --dry-run` here (through the script's UFW variable): it then prints the rules it
would write and changes nothing, so the tests never touch the machine's firewall. To start from rules the
machine does not have, a test runs ufw in a private mount namespace over a copy of /etc/ufw, still with
--dry-run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shell_scripts import script_command
from tests.sshd import LoginUser, LoginUsers, login_users, require_root, run_command_text
from tests.system_programs import require_tool

NO_UFW = "/nonexistent/ufw"


def run_script(*args: str, ufw: str, as_user: LoginUser | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the command text Pulumi runs (firewall_command's), under /bin/sh -c as sshd would."""
    return run_command_text(script_command("open-firewall-port.sh", *args), {"UFW": ufw}, as_user)


def ufw_rules() -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path("/etc/ufw").glob("user*.rules"))
    }


@pytest.fixture
def dry_run_ufw() -> Iterator[str]:
    """`ufw --dry-run`, checking that the machine's ufw rules are the same afterwards."""
    require_root()  # ufw refuses to run, even for a dry run, without root
    ufw = require_tool("ufw")
    rules = ufw_rules()
    yield f"{ufw} --dry-run"
    assert ufw_rules() == rules


@pytest.fixture(scope="module")
def users() -> Iterator[LoginUsers]:
    with login_users() as created:
        yield created


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "expects exactly one argument, PORT/PROTO; got 0"),
        (("4433/udp", "80/tcp"), "expects exactly one argument, PORT/PROTO; got 2"),
        (("4433",), "'4433' is not PORT/PROTO, e.g. 4433/udp"),
        (("udp/4433",), "'udp/4433' is not PORT/PROTO"),
        (("4433/icmp",), "'4433/icmp' is not PORT/PROTO"),
        (("0/udp",), "'0/udp' is not PORT/PROTO"),
        (("65536/udp",), "port 65536 is above 65535"),
        (("4433/udp;reboot",), "'4433/udp;reboot' is not PORT/PROTO"),
    ],
    ids=["none", "two", "no-proto", "reversed", "icmp", "zero", "too-high", "injection"],
)
def test_bad_arguments_are_refused_before_anything_runs(args: tuple[str, ...], message: str):
    result = run_script(*args, ufw="/bin/false")

    assert result.returncode == 2
    assert result.stderr.startswith(f"open-firewall-port: {message}")
    assert "Usage: open-firewall-port.sh PORT/PROTO" in result.stderr
    assert result.stdout == ""


def test_a_host_without_ufw_has_nothing_to_open():
    result = run_script("4433/udp", ufw=NO_UFW)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "open-firewall-port: no ufw: nothing to open for 4433/udp (this host has no ufw firewall)"
    )


def test_runs_ufw_allow_as_root(dry_run_ufw: str):
    result = run_script("4433/udp", ufw=dry_run_ufw)

    assert result.returncode == 0, result.stderr
    assert "-A ufw-user-input -p udp --dport 4433 -j ACCEPT" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("open-firewall-port: allowed 4433/udp in ufw")


def test_a_user_with_passwordless_sudo_runs_ufw_through_it(dry_run_ufw: str, users: LoginUsers):
    result = run_script("4433/udp", ufw=dry_run_ufw, as_user=users.with_sudo)

    # Without sudo ufw would say "ERROR: You need to be root to run this script".
    assert result.returncode == 0, result.stderr
    assert "-A ufw-user-input -p udp --dport 4433 -j ACCEPT" in result.stdout


def test_a_user_without_sudo_gets_a_clear_error(dry_run_ufw: str, users: LoginUsers):
    result = run_script("4433/udp", ufw=dry_run_ufw, as_user=users.without_sudo)

    assert result.returncode == 1
    assert result.stderr == (
        "open-firewall-port: needs root or passwordless sudo to run ufw allow 4433/udp "
        "(sudo: a password is required)\n"
    )
    assert result.stdout == ""


# The rules file lines `ufw allow 4433/udp` writes for one address family.
V4_RULE = (
    "### tuple ### allow udp 4433 0.0.0.0/0 any 0.0.0.0/0 in\n"
    "-A ufw-user-input -p udp --dport 4433 -j ACCEPT\n"
)
V6_RULE = "### tuple ### allow udp 4433 ::/0 any ::/0 in\n-A ufw6-user-input -p udp --dport 4433 -j ACCEPT\n"


def run_over_rules(
    dry_run_ufw: str, tmp_path: Path, rules: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Runs the script in a private mount namespace whose /etc/ufw is a copy holding `rules` (by file)."""
    require_tool("unshare")
    copy = tmp_path / "ufw"
    shutil.copytree("/etc/ufw", copy, symlinks=True)
    for name, rule in rules.items():
        path = copy / name
        path.write_text(path.read_text().replace("### RULES ###\n", f"### RULES ###\n\n{rule}", 1))
    inner = 'mount --bind "$1" /etc/ufw && exec /bin/sh -c "$2"'
    command = script_command("open-firewall-port.sh", "4433/udp")
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", inner, "ns", str(copy), command],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "UFW": dry_run_ufw},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_ipv6_rule_added_beside_an_existing_ipv4_rule_is_reported_as_such(
    dry_run_ufw: str, tmp_path: Path
):
    result = run_over_rules(dry_run_ufw, tmp_path, {"user.rules": V4_RULE})

    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith(
        "open-firewall-port: allowed 4433/udp in ufw: added the IPv6 rule; the IPv4 rule was"
    )
    assert "nothing changed" not in result.stdout


def test_a_port_allowed_for_both_families_changes_nothing(dry_run_ufw: str, tmp_path: Path):
    result = run_over_rules(dry_run_ufw, tmp_path, {"user.rules": V4_RULE, "user6.rules": V6_RULE})

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "open-firewall-port: 4433/udp was already allowed in ufw (IPv4/IPv6); nothing changed"
    )

"""Removes the DNS host's dnsmasq override for the bootstrap name, over SSH, and optionally opens its port."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from secret_inputs import kept_secret
from shell_scripts import script_command
from stack_config import DnsFixConfig


@dataclass(frozen=True)
class DnsOverrideRemovalArgs:
    dns_fix: DnsFixConfig
    # dnsFix was set with --secret: the command text is kept secret (the connection always is).
    secret: bool = False


def dns_fix_command(hostname: str, restart_command: str | None = None, pid_file: str | None = None) -> str:
    """The exact text handed to remote.Command: the script inline, so the host needs no checkout."""
    options = [
        *(["--restart-command", restart_command] if restart_command is not None else []),
        *(["--pid-file", pid_file] if pid_file is not None else []),
    ]
    return script_command("update-bootstrap-dns.sh", *options, hostname)


def firewall_command(udp_port: int) -> str:
    return script_command("open-firewall-port.sh", f"{udp_port}/udp")


def connection_args(dns_fix: DnsFixConfig) -> command.remote.ConnectionArgs:
    return command.remote.ConnectionArgs(
        host=dns_fix.host,
        port=dns_fix.port,
        user=dns_fix.user,
        host_key=dns_fix.host_key,
        # Without a key the provider authenticates through ssh-agent (SSH_AUTH_SOCK).
        private_key=pulumi.Output.secret(dns_fix.private_key) if dns_fix.private_key else None,
    )


class DnsOverrideRemoval(pulumi.ComponentResource):
    """Runs scripts/update-bootstrap-dns.sh on the DNS host once, then only when it or its inputs change."""

    dns_fix: command.remote.Command
    firewall: command.remote.Command | None

    def __init__(
        self, name: str, args: DnsOverrideRemovalArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("macula:lan:DnsOverrideRemoval", name, None, opts)
        connection = connection_args(args.dns_fix)
        self.dns_fix = command.remote.Command(
            f"{name}-dnsmasq",
            connection=connection,
            create=kept_secret(
                dns_fix_command(args.dns_fix.hostname, args.dns_fix.restart_command, args.dns_fix.pid_file),
                args.secret,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.firewall = None
        if args.dns_fix.open_firewall:
            self.firewall = command.remote.Command(
                f"{name}-firewall",
                connection=connection,
                create=kept_secret(firewall_command(args.dns_fix.firewall_port), args.secret),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs(
            {
                "dnsFix": self.dns_fix.stdout,
                "firewall": self.firewall.stdout if self.firewall else None,
            }
        )

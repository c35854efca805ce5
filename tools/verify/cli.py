"""python -m tools.verify: the command line (see the package's docstring)."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from kube_client import DEFAULT_KUBECTL_TIMEOUT
from stack_config import ConfigError
from stack_config.files import project_namespace
from tools.arguments import add_kubectl_timeout, seconds
from tools.verify import fleet_status
from tools.verify.check import summary
from tools.verify.dns_check import parse_server
from tools.verify.run import DEFAULT_TIMEOUT, Options, iter_checks
from tools.verify.stack import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent


def _server_argument(text: str) -> tuple[str, int]:
    try:
        return parse_server(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not IP[:PORT] or [IPv6]:PORT: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.verify",
        description="Check a stack's MetalLB, bootstrap Service, DNS name and UDP port, one line per check.",
        epilog="Exit status: 0 no check failed (warnings allowed), 1 a check failed, "
        "2 a check could not be made or the stack cannot be read.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="the stack to check, as in Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true", help="check every stack; print one table of the fleet")
    parser.add_argument("--json", action="store_true", help="with --all: print the fleet's status as JSON")
    parser.add_argument(
        "--resolver",
        metavar="IP[:PORT]",
        type=_server_argument,
        help="DNS server to ask, IP[:PORT] (default: the first nameserver of /etc/resolv.conf)",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=seconds(0.1, 600),
        default=DEFAULT_TIMEOUT,
        help=f"seconds the DNS query and the UDP probe wait for an answer (default {DEFAULT_TIMEOUT:g})",
    )
    add_kubectl_timeout(parser, DEFAULT_KUBECTL_TIMEOUT)
    parser.add_argument(
        "--strict-udp", action="store_true", help="count a UDP probe that gets no reply as a failure"
    )
    parser.add_argument(
        "--no-arp", action="store_true", help="send no ARP requests: skip the probe for address conflicts"
    )
    parser.add_argument(
        "--pulumi",
        default="pulumi",
        metavar="PATH",
        help="the Pulumi CLI that decrypts a stack's secret config (default: pulumi on PATH)",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.json and not args.all:
        parser.error("--json goes with --all")

    try:
        project = project_namespace(args.project_dir)
    except ConfigError as error:
        print(f"verify: {error}", file=sys.stderr)
        return 2
    options = Options(
        args.resolver, args.timeout, args.strict_udp, args.kubectl_timeout, not args.no_arp, project
    )
    if args.all:
        statuses = fleet_status.fleet_status(args.project_dir, args.pulumi, options)
        print(fleet_status.status_json(statuses) if args.json else fleet_status.render_table(statuses))
        return fleet_status.exit_code(statuses)
    try:
        stack = read_stack_config(args.project_dir, args.stack, args.pulumi)
    except ConfigError as error:
        print(f"verify: {error}", file=sys.stderr)
        return 2
    print(stack.redact(f"verify stack {stack.config.stack}: context {stack.config.kube_context}"))
    checks = []
    for check in iter_checks(stack.config, options):
        print(stack.redact(check.line()), flush=True)
        checks.append(check)
    last, code = summary(stack.config.stack, checks)
    print(stack.redact(last))
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """main, with every failure to make the checks exiting 2, never 1, which means a check failed."""
    try:
        return main(argv)
    except Exception as error:  # an unforeseen failure is a check that could not be made, not a failed one
        # Where it happened, not what it said: its message may quote decrypted secret config.
        sys.stderr.write("".join(traceback.format_tb(error.__traceback__)))
        print(
            f"verify: the checks could not be made: an unforeseen {type(error).__name__} (where: above; its "
            "message is left out, as it may hold secret config)",
            file=sys.stderr,
        )
        return 2

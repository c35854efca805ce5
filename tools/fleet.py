"""The fleet's LAN address plan, and a new cluster's stack file on the first range that fits.

    python -m tools.fleet plan [--json]                                    (make plan)
    python -m tools.fleet add-cluster NAME --context CONTEXT --size N

`plan` prints, from the committed files only, each stack's context, pools (with their sizes) and pinned
addresses, the LAN's reserved addresses, and the ranges of the subnet nobody holds. `--json` prints the
same data for scripts.

`add-cluster` writes `Pulumi.NAME.yaml`: the context, one pool `lan-pool` of N addresses on the first
range that fits the LAN plan and the layout the other stacks follow (stack_config.fleet says which), and
its advertisement. The file is validated by the same code as every stack before it is written, and holds
no secret. It refuses, saying why, when the stack exists or no range fits.

Exit status: 0 done; 1 add-cluster refused (the stack exists, no range fits); 2 bad arguments or a
project file that is invalid.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stack_config import AddressBlock, ConfigError, LanPlan, StackConfig, load_stack_file_config
from stack_config.files import Project, read_project
from stack_config.fleet import AllocationError, allocate, free_ranges
from stack_config.parsing import parse_stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Pulumi's own rule for stack names.
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
POOL = "lan-pool"
ADVERTISEMENT = "lan-advertisement"


@dataclass(frozen=True)
class FleetView:
    """Every stack's configuration and which LAN plan it is on, and the project's plan."""

    plan: LanPlan
    stacks: tuple[tuple[StackConfig, LanPlan], ...]

    def pools_on(self, plan: LanPlan) -> dict[str, Any]:
        return {config.stack: config.pools for config, own in self.stacks if own == plan}


def read_view(project: Project) -> FleetView:
    stacks = tuple((project.stack_config(stack), project.fleet(stack).plan) for stack in project.stacks)
    return FleetView(project.plan, stacks)


def _block_json(block: AddressBlock) -> dict[str, Any]:
    return {"text": block.text, "first": str(block.first), "last": str(block.last), "size": block.size}


def plan_data(view: FleetView) -> dict[str, Any]:
    return {
        "lan": {"subnets": [str(s) for s in view.plan.subnets], "source": view.plan.source},
        "stacks": [
            {
                "stack": config.stack,
                "context": config.kube_context,
                "lan": own.source,
                "pools": [
                    {
                        "name": pool.name,
                        "size": pool.size,
                        "addresses": [_block_json(block) for block in pool.addresses],
                    }
                    for pool in config.pools
                ],
                "pinned": [str(config.bootstrap.ip)] if config.bootstrap and config.bootstrap.ip else [],
            }
            for config, own in view.stacks
        ],
        "reserved": [
            {
                "reason": reservation.reason,
                "key": reservation.key,
                "addresses": _block_json(reservation.addresses) if reservation.addresses else None,
            }
            for reservation in view.plan.reservations
        ],
        "free": [_block_json(block) for block in free_ranges(view.plan, view.pools_on(view.plan))],
    }


def plan_lines(data: dict[str, Any]) -> list[str]:
    lan = data["lan"]
    lines = [f"LAN {', '.join(lan['subnets'])} ({lan['source']})", ""]
    rows = [("stack", "context", "pool", "addresses", "size", "pinned")]
    for stack in data["stacks"]:
        own = "" if stack["lan"] == lan["source"] else f" (own LAN, {stack['lan']})"
        for pool in stack["pools"]:
            rows.append(
                (
                    stack["stack"] + own,
                    stack["context"],
                    pool["name"],
                    ", ".join(block["text"] for block in pool["addresses"]),
                    str(pool["size"]),
                    ", ".join(stack["pinned"]) or "-",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines += ["", "reserved"]
    for reservation in data["reserved"]:
        where = reservation["addresses"]["text"] if reservation["addresses"] else "not filled in"
        note = "" if reservation["addresses"] else f" (fill in {lan['source']} {reservation['key']})"
        lines.append(f"  {where:<32} {reservation['reason']}{note}")
    lines += ["", "free"]
    lines += [f"  {block['text']:<32} {block['size']:>5}" for block in data["free"]] or ["  none"]
    return lines


def stack_file_text(name: str, context: str, size: int, block: AddressBlock, namespace: str) -> str:
    config = {
        f"{namespace}:kubeContext": context,
        f"{namespace}:pools": [{"name": POOL, "addresses": [block.text]}],
        f"{namespace}:advertisements": [{"name": ADVERTISEMENT, "pools": [POOL]}],
    }
    header = (
        f"# Cluster {name}. Written by `python -m tools.fleet add-cluster {name} --context {context} --size "
        f"{size}`:\n# its pool is the first free range of {size} addresses in the LAN plan (Pulumi.yaml).\n"
    )
    return header + yaml.safe_dump({"config": config}, sort_keys=False)


def add_cluster(project_dir: Path, name: str, context: str, size: int) -> tuple[int, str]:
    """Writes Pulumi.NAME.yaml; returns the exit status and the message."""
    path = project_dir / f"Pulumi.{name}.yaml"
    if path.exists():
        return 1, f"stack {name} exists already ({path.name}); nothing written"
    project = read_project(project_dir)
    view = read_view(project)
    try:
        block = allocate(view.plan, view.pools_on(view.plan), size)
    except AllocationError as error:
        return 1, f"{error}; nothing written"
    text = stack_file_text(name, context, size, block, project.namespace)
    values = {key.split(":", 1)[1]: value for key, value in yaml.safe_load(text)["config"].items()}
    parse_stack_config(name, project.namespace, values, project.fleet(name))
    with path.open("x") as stack_file:
        stack_file.write(text)
    try:
        load_stack_file_config(project_dir, name)
    except ConfigError:
        path.unlink()
        raise
    return 0, (
        f"wrote {path.name}: context {context}, pool {POOL} {block.text} ({size} addresses). Next: "
        f"pulumi stack init {name}, then `pulumi preview --stack {name}`, and commit {path.name}"
    )


def _size(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 254:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of addresses from 1 to 254")
    return int(text)


def _stack_name(text: str) -> str:
    if not STACK_NAME.match(text) or text.startswith("-"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a stack name (letters, digits, '-', '_', '.')")
    return text


def _context(text: str) -> str:
    if not text.strip() or any(ord(c) < 32 for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a kubeconfig context name")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan", help="print every stack's ranges, the reservations and the free ranges"
    )
    plan.add_argument("--json", action="store_true", help="print the same data as JSON")
    add = commands.add_parser("add-cluster", help="write Pulumi.NAME.yaml on the first range that fits")
    add.add_argument("name", type=_stack_name, metavar="NAME", help="the new stack's name")
    add.add_argument("--context", type=_context, required=True, help="the cluster's kubeconfig context")
    add.add_argument("--size", type=_size, required=True, help="how many addresses its pool gets (1-254)")
    args = parser.parse_args(argv)

    try:
        if args.command == "plan":
            data = plan_data(read_view(read_project(args.project_dir)))
            print(json.dumps(data, indent=2) if args.json else "\n".join(plan_lines(data)))
            return 0
        status, message = add_cluster(args.project_dir, args.name, args.context, args.size)
    except ConfigError as error:
        print(f"fleet: {error}", file=sys.stderr)
        return 2
    print(f"fleet: {message}", file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())

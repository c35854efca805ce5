"""The fleet's status: every stack checked as tools.verify checks one, in one table or as JSON.

    python -m tools.verify --all [--json]          (make verify, with no STACK)

Per stack: its context, the MetalLB version its controller runs, each pool with the addresses LoadBalancer
Services hold in it and its size, the pinned IPs, and each check's verdict. A stack whose cluster cannot be
reached, or whose file cannot be read, is one `error` row; the others are still checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube_client import KubectlError
from project_files import stack_names
from stack_config import ConfigError, PoolConfig
from stack_config.files import read_project
from tools.verify.check import Check, summary
from tools.verify.cluster import CONTROLLER, METALLB_NAMESPACE, field_at, service_ips
from tools.verify.run import Options, cluster_reads, iter_checks
from tools.verify.stack import StackToVerify, read_stack_config


@dataclass
class StackStatus:
    stack: str
    context: str = ""
    metallb: str | None = None
    pools: list[dict[str, Any]] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    # Why the stack could not be checked at all.
    error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return 2
        return summary(self.stack, self.checks)[1]


def metallb_version(deployment: Any) -> str | None:
    """The tag of the controller's image: the MetalLB version the cluster runs."""
    containers = field_at(deployment, "spec", "template", "spec", "containers") or []
    for container in containers:
        image = field_at(container, "image")
        if field_at(container, "name") == "controller" and isinstance(image, str) and ":" in image:
            return image.rsplit(":", 1)[1]
    return None


def pool_usage(pools: Sequence[PoolConfig], services: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each pool's addresses held by LoadBalancer Services (status.loadBalancer.ingress), and its size."""
    held = [ip for service in services for ip in service_ips(service)]
    return [
        {"name": pool.name, "in_use": sum(1 for ip in held if pool.contains(ip)), "total": pool.size}
        for pool in pools
    ]


def stack_status(stack: StackToVerify, options: Options) -> StackStatus:
    """One stack's row, its secret values redacted."""
    config = stack.config
    status = StackStatus(config.stack, stack.redact(config.kube_context))
    status.pinned = (
        [stack.redact(str(config.bootstrap.ip))] if config.bootstrap and config.bootstrap.ip else []
    )
    reads = cluster_reads(config, options)
    try:
        deployment = reads.get("deployments.v1.apps", METALLB_NAMESPACE, CONTROLLER)
        services = reads.items("services")
    except KubectlError as error:
        status.error = stack.redact(f"cannot read the cluster: {error}")
        return status
    status.metallb = metallb_version(deployment)
    status.pools = [
        {**pool, "name": stack.redact(pool["name"])} for pool in pool_usage(config.pools, services)
    ]
    status.checks = [
        Check(check.status, check.name, stack.redact(check.detail))
        for check in iter_checks(config, options, reads)
    ]
    return status


def fleet_status(project_dir: Path, pulumi: str, options: Options) -> list[StackStatus]:
    # Pulumi.yaml and every stack file, read once for all the stacks.
    try:
        project = read_project(project_dir)
    except ConfigError as error:
        return [StackStatus(stack, error=str(error)) for stack in stack_names(project_dir)]
    statuses = []
    for stack in project.stacks:
        try:
            to_verify = read_stack_config(project_dir, stack, pulumi, project)
        except ConfigError as error:
            statuses.append(StackStatus(stack, error=str(error)))
            continue
        try:
            statuses.append(stack_status(to_verify, options))
        except Exception as error:  # one stack verify cannot check is that stack's error row, not a crash
            # Its type, not its message, which may quote decrypted secret config.
            failed = f"the checks could not be made: an unforeseen {type(error).__name__}"
            statuses.append(StackStatus(stack, error=failed))
    return statuses


def _verdicts(status: StackStatus) -> str:
    if status.error is not None:
        return status.error
    ok = sum(1 for check in status.checks if check.status == "ok")
    grouped = [
        f"{verdict} {', '.join(check.name for check in status.checks if check.status == verdict)}"
        for verdict in ("FAIL", "error", "warn", "skip")
        if any(check.status == verdict for check in status.checks)
    ]
    return "; ".join([f"ok {ok}", *grouped])


def render_table(statuses: Sequence[StackStatus]) -> str:
    rows = [("stack", "context", "metallb", "pools (in use/total)", "pinned", "result", "checks")]
    for status in statuses:
        result = "error" if status.exit_code == 2 else "FAIL" if status.exit_code == 1 else "ok"
        pools = ", ".join(f"{pool['name']} {pool['in_use']}/{pool['total']}" for pool in status.pools)
        rows.append(
            (
                status.stack,
                status.context or "-",
                status.metallb or "-",
                pools or "-",
                ", ".join(status.pinned) or "-",
                result,
                _verdicts(status),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]]
        ).rstrip()
        for row in rows
    )


def status_json(statuses: Sequence[StackStatus]) -> str:
    return json.dumps(
        [
            {
                "stack": status.stack,
                "context": status.context,
                "metallb": status.metallb,
                "pools": status.pools,
                "pinned": status.pinned,
                "exit": status.exit_code,
                "error": status.error,
                "checks": [{"status": c.status, "name": c.name, "detail": c.detail} for c in status.checks],
            }
            for status in statuses
        ],
        indent=2,
    )


def exit_code(statuses: Sequence[StackStatus]) -> int:
    codes = {status.exit_code for status in statuses}
    return 2 if 2 in codes else 1 if 1 in codes else 0

"""One check's verdict, and what a run's verdicts add up to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# `error`: the check could not be made (kubectl or the resolver could not be asked): not a failed check.
Status = Literal["ok", "FAIL", "warn", "skip", "error"]


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<5} {self.name:<15} {self.detail}"


def summary(stack: str, checks: Sequence[Check]) -> tuple[str, int]:
    """The last line and the exit code: 2 when a check could not be made (it may hide a failure), else 1
    when a check failed, else 0."""
    failed = [check.name for check in checks if check.status == "FAIL"]
    warned = [check.name for check in checks if check.status == "warn"]
    errors = [check.name for check in checks if check.status == "error"]
    if errors:
        also = f"; {len(failed)} failed: {', '.join(failed)}" if failed else ""
        return (
            f"error {len(errors)} of {len(checks)} checks could not be made for stack {stack}: "
            f"{', '.join(errors)}{also}",
            2,
        )
    if failed:
        return f"FAIL  {len(failed)} of {len(checks)} checks failed for stack {stack}: {', '.join(failed)}", 1
    warnings = (
        f" ({len(warned)} warning{'s' if len(warned) > 1 else ''}: {', '.join(warned)})" if warned else ""
    )
    return f"ok    no check failed for stack {stack}{warnings}", 0

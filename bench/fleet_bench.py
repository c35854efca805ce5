"""What the fleet's size costs: the cross-stack read every stack's program does, and tools.fleet.

On a generated project of 100 stacks (10.0.N.10-10.0.N.20 each, on a 10.0.0.0/16 LAN plan), it prints:
- the cross-stack read (stack_config.files.read_project and the stack's fleet: Pulumi.yaml, every stack file,
  every other stack's pools), per other stack file: the time with 100 files less the time with none,
  over 100, warm (median of several runs);
- `tools.fleet plan` and `tools.fleet add-cluster` on that fleet, in process (warm) and as the command a
  user runs (a fresh interpreter, imports included).
Run with `make bench`. Targets: at most 0.2 ms per other stack file; plan and add-cluster under 1 s.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stack_config.files import read_project
from tests.program import PROJECT_DIR
from tools import fleet

RUNS = 7
STACKS = 100
PLAN = """\
name: macula-lan
runtime: python
config:
  macula-lan:lan:
    value:
      subnet: 10.0.0.0/16
      reserved:
        - addresses: 10.0.0.1
          reason: the gateway
"""


def write_project(directory: Path, stacks: int) -> None:
    directory.mkdir(parents=True)
    (directory / "Pulumi.yaml").write_text(PLAN)
    for index in range(stacks):
        (directory / f"Pulumi.s{index:03d}.yaml").write_text(
            "config:\n"
            f"  macula-lan:kubeContext: s{index:03d}\n"
            "  macula-lan:pools:\n"
            "    - name: lan-pool\n"
            f"      addresses: [10.0.{index + 1}.10-10.0.{index + 1}.20]\n"
        )


def median_seconds(action: Callable[[], object]) -> float:
    action()
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def quietly(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fleet.main(argv)


def cold_seconds(argv: list[str], reset: Callable[[], object]) -> float:
    samples = []
    for _ in range(3):
        reset()
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tools.fleet", *argv], cwd=PROJECT_DIR, capture_output=True, check=True
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        empty, full = Path(temp) / "empty", Path(temp) / "full"
        write_project(empty, 1)
        write_project(full, STACKS + 1)
        alone = median_seconds(lambda: read_project(empty).fleet("s000"))
        with_others = median_seconds(lambda: read_project(full).fleet("s000"))
        per_file_ms = (with_others - alone) / STACKS * 1000
        print(f"cross-stack read: {per_file_ms:.3f} ms per other stack file (target 0.2 ms)")
        print(
            f"  {with_others * 1000:.1f} ms with {STACKS} other stack files, {alone * 1000:.1f} ms with none"
        )

        plan_args = ["--project-dir", str(full), "plan"]
        print(
            f"tools.fleet plan, {STACKS + 1} stacks: {median_seconds(lambda: quietly(plan_args)):.3f} s warm"
        )
        print(f"  as a command: {cold_seconds(plan_args, lambda: None):.3f} s (target under 1 s)")

        new_stack = full / "Pulumi.added.yaml"

        add_args = ["--project-dir", str(full), "add-cluster", "added", "--context", "c", "--size", "11"]

        def add() -> int:
            new_stack.unlink(missing_ok=True)
            return quietly(add_args)

        print(f"tools.fleet add-cluster, {STACKS + 1} stacks: {median_seconds(add):.3f} s warm")
        cold = cold_seconds(add_args, lambda: new_stack.unlink(missing_ok=True))
        print(f"  as a command: {cold:.3f} s (target under 1 s)")
        shutil.rmtree(full)


if __name__ == "__main__":
    main()

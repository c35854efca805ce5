"""How long evaluating each stack's program takes, next to the bare cost of importing the Pulumi SDKs.

Two figures per stack, each the median of several runs:
- cold: a fresh interpreter that imports everything and runs the program once under mocks, as every
  `pulumi preview` pays it;
- warm: the program alone, run again in an interpreter that has already imported the SDKs.
Both include the program's survey of its cluster: a real kubectl against a fake API server on loopback
(an empty cluster). The survey alone is timed too, on an empty cluster and on the runbook's (it needs
../shared/upstream for the latter).
The import line imports exactly the SDK modules the program uses (pulumi_kubernetes loads its
generated modules lazily, so a bare `import pulumi_kubernetes` would hide most of their cost).
Run with `make bench`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from metallb_survey import survey_cluster
from tests.kube_cluster import fake_cluster
from tests.metallb_installs import runbook_install
from tests.program import PROJECT_DIR, STACKS, run_program
from tests.upstream import UPSTREAM_DIR

RUNS = 5
IMPORT_SDKS = (
    "import pulumi, pulumi.runtime.mocks, yaml, pulumi_command.local, pulumi_kubernetes.core.v1, "
    "pulumi_kubernetes.helm.v4, pulumi_kubernetes.meta.v1, pulumi_kubernetes.apiextensions"
)
RUN_PROGRAM = "import sys; from tests.program import run_program; assert run_program(sys.argv[1]).resources"


def median_cold_seconds(code: str, *args: str) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT_DIR, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def median_warm_seconds(stack: str) -> float:
    run_program(stack)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run_program(stack)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def median_survey_seconds(objects: list[dict[str, object]]) -> float:
    samples = []
    with fake_cluster(objects) as cluster:
        survey_cluster(cluster.kubectl())
        for _ in range(RUNS):
            started = time.perf_counter()
            survey_cluster(cluster.kubectl())
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    imports = median_cold_seconds(IMPORT_SDKS)
    print(f"median of {RUNS} runs; cold = fresh interpreter, warm = SDKs already imported")
    print(f"{'':<24}{'cold s':>9}{'warm s':>9}{'warm/imports':>14}")
    print(f"{'import the Pulumi SDKs':<24}{imports:>9.3f}")
    for stack in STACKS:
        cold = median_cold_seconds(RUN_PROGRAM, stack)
        warm = median_warm_seconds(stack)
        print(f"{'stack ' + stack:<24}{cold:>9.3f}{warm:>9.3f}{warm / imports:>14.1%}")
    print(f"{'survey, empty cluster':<24}{'':>9}{median_survey_seconds([]):>9.3f}")
    if UPSTREAM_DIR.is_dir():
        runbook = median_survey_seconds(runbook_install())
        print(f"{'survey, runbook cluster':<24}{'':>9}{runbook:>9.3f}")


if __name__ == "__main__":
    main()

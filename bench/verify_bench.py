"""How long `make verify` (tools.verify --all) takes over the committed stacks when no cluster answers.

Target: within 2 s plus the kubectl timeouts that are actually reached. Two fleets, every stack's context
on the loopback of a network namespace of the bench's own (so nothing verify sends can leave it), run as
the command a user runs (a fresh interpreter, a real kubectl; `ip netns exec` adds a few milliseconds):
- refused: nothing listens, so kubectl fails at once and no timeout is reached;
- hung: a server takes the connections and never answers, so each stack's first read waits out its
  timeout (--kubectl-timeout 1), and verify asks that cluster nothing more.
The timeouts reached are the ones verify reports ("did not answer within N s"), summed. Needs root and
iproute2, as the tests do.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from project_files import stack_names
from stack_config.files import read_project
from tests.fake_kube_api import write_kubeconfig
from tests.netns import NetNamespace, network_namespace
from tests.program import PROJECT_DIR

RUNS = 3
BUDGET_SECONDS = 2.0
KUBECTL_TIMEOUT = "1"
# The API server's port; nothing listens on it in the bench's namespace.
REFUSED_URL = "http://127.0.0.1:6443"
REACHED = re.compile(r"did not answer within ([0-9.]+)s")


@contextmanager
def fleet_on(url: str) -> Iterator[dict[str, str]]:
    """The environment of a `make verify` whose kubeconfig puts every committed stack's context on `url`."""
    project = read_project(PROJECT_DIR)
    contexts = {project.stack_config(stack).kube_context: url for stack in project.stacks}
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as directory:
        kubeconfig = write_kubeconfig(Path(directory) / "kubeconfig", contexts)
        yield {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": f"{directory}/cache"}


def run_verify(namespace: NetNamespace, environment: dict[str, str]) -> tuple[float, float]:
    """One `tools.verify --all --json`: seconds taken, and seconds of timeouts it reports reached."""
    command = namespace.command(
        [sys.executable, "-m", "tools.verify", "--all", "--json", "--kubectl-timeout", KUBECTL_TIMEOUT]
    )
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    elapsed = time.monotonic() - started
    if result.returncode != 2:
        raise SystemExit(f"verify exited {result.returncode}, not 2:\n{result.stdout}{result.stderr}")
    rows = json.loads(result.stdout)
    unreachable = [row["stack"] for row in rows if row["error"] is not None]
    if unreachable != stack_names(PROJECT_DIR):
        raise SystemExit(f"verify did not report every stack unreachable:\n{result.stdout}")
    reached = sum(float(seconds) for row in rows for seconds in REACHED.findall(row["error"]))
    return elapsed, reached


def report(label: str, namespace: NetNamespace, url: str) -> None:
    with fleet_on(url) as environment:
        runs = [run_verify(namespace, environment) for _ in range(RUNS)]
    elapsed = statistics.median(seconds for seconds, _ in runs)
    reached = max(timeouts for _, timeouts in runs)
    budget = BUDGET_SECONDS + reached
    verdict = "within" if elapsed <= budget else "OVER"
    print(
        f"  {label:<32} {elapsed:5.2f} s   timeouts reached {reached:4.1f} s   "
        f"budget {budget:5.2f} s   {verdict}"
    )


def main() -> None:
    stacks = ", ".join(stack_names(PROJECT_DIR))
    print(
        f"make verify (tools.verify --all, --kubectl-timeout {KUBECTL_TIMEOUT}) over {stacks}, no cluster "
        f"answering; median of {RUNS}:"
    )
    with network_namespace() as namespace:
        report("refused (nothing listens)", namespace, REFUSED_URL)
        with namespace.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            report(
                "hung (accepts, never answers)", namespace, f"http://127.0.0.1:{listener.getsockname()[1]}"
            )


if __name__ == "__main__":
    main()

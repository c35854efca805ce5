"""A real kubectl pointed at a fake API server (tests.fake_kube_api) through a kubeconfig of its own."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kube_client import Kubectl
from project_files import stack_names
from tests.fake_kube_api import FakeKubeApi, unreachable_url, write_kubeconfig
from tests.system_programs import require_tool

PROJECT_DIR = Path(__file__).resolve().parent.parent

UNREACHABLE_CONTEXT = "switched-off"


def stack_contexts() -> list[str]:
    """Every committed stack's context, and the ones tests make up."""
    contexts = set()
    for stack in stack_names(PROJECT_DIR):
        config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()).get("config") or {}
        contexts |= {str(value) for key, value in config.items() if key.endswith(":kubeContext")}
    return sorted(contexts | {"beam02", "kind-test"})


@dataclass
class FakeCluster:
    api: FakeKubeApi
    kubeconfig: Path
    executable: str

    def kubectl(self, context: str = "kind-macula-dev", timeout: float = 10) -> Kubectl:
        return Kubectl(context, str(self.kubeconfig), timeout, self.executable)


@contextmanager
def fake_cluster(
    objects: Iterable[dict[str, Any]] = (), api: FakeKubeApi | None = None
) -> Iterator[FakeCluster]:
    """Serve `objects` (or `api`) for every stack context, with $KUBECONFIG naming it for the duration.

    Context UNREACHABLE_CONTEXT names a loopback port nobody listens on. kubectl's discovery cache goes
    to a directory of the run's own, so no run sees another's API.
    """
    executable = require_tool("kubectl")
    api = api if api is not None else FakeKubeApi(objects)
    with tempfile.TemporaryDirectory(prefix="fake-cluster-") as directory, api.serve() as url:
        contexts = {context: url for context in stack_contexts()} | {UNREACHABLE_CONTEXT: unreachable_url()}
        kubeconfig = write_kubeconfig(Path(directory) / "kubeconfig", contexts)
        saved = {key: os.environ.get(key) for key in ("KUBECONFIG", "KUBECACHEDIR")}
        os.environ["KUBECONFIG"] = str(kubeconfig)
        os.environ["KUBECACHEDIR"] = str(Path(directory) / "cache")
        try:
            yield FakeCluster(api, kubeconfig, executable)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def kubectl_minor_version() -> int:
    """The client's minor version (32 for v1.32.4), or 0 when it does not say."""
    result = subprocess.run(
        [require_tool("kubectl"), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        minor = json.loads(result.stdout)["clientVersion"]["minor"]
    except (ValueError, KeyError, TypeError):
        return 0
    return int("".join(ch for ch in str(minor) if ch.isdigit()) or 0)


def run_local_command(
    command: str, *extra: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs command text as pulumi-command's local provider does (/bin/sh -c), in this process's
    environment (which fake_cluster points at its server) plus `env`. `extra` is appended as shell text."""
    return subprocess.run(
        ["/bin/sh", "-c", " ".join([command, *extra])],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

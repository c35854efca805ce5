"""verify as a user runs it, with a stand-in kubectl that answers from the recorded API responses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.netns import NetNamespace
from tests.program import PROJECT_DIR
from tests.standin_kubectl import write_kubectl
from tests.tools.verify.kind_dev import RECORDED

STANDIN_KUBECTL = """
args = sys.argv[1:]
get = args.index("get")
resource, rest = args[get + 1], args[get + 2 :]
name = rest[0] if rest and not rest[0].startswith("-") else None
with open(os.path.join(here, "objects.json")) as f:
    served = json.load(f)
key = f"{resource}/{name}" if name else resource
if "error" in served:
    sys.stderr.write(served["error"] + "\\n")
    sys.exit(1)
if key not in served:
    sys.stderr.write(f"standin kubectl: nothing recorded for {key}\\n")
    sys.exit(3)
if served[key] is not None:
    sys.stdout.write(served[key])
"""


def on_port(text: str, port: int) -> str:
    """Recorded text with the bootstrap port 4433 moved to `port`."""
    return text.replace('"port": 4433', f'"port": {port}')


def serve(directory: Path, objects: Mapping[str, str | None], transform: Callable[[str], str] = str) -> None:
    """A stand-in kubectl in `directory` answering each `resource[/name]` key of `objects` with that
    recorded file, after `transform`; a key whose file is None is an object that does not exist."""
    write_kubectl(directory, STANDIN_KUBECTL)
    bodies = {
        key: None if name is None else transform((RECORDED / name).read_text())
        for key, name in objects.items()
    }
    (directory / "objects.json").write_text(json.dumps(bodies))


HEALTHY = {
    "deployments.v1.apps/metallb-controller": "deployment-metallb-controller.ready.json",
    "daemonsets.v1.apps/metallb-speaker": "daemonset-metallb-speaker.ready.json",
    "ipaddresspools.v1beta1.metallb.io": "ipaddresspools.json",
    "l2advertisements.v1beta1.metallb.io": "l2advertisements.json",
    "services/macula-bootstrap": "service-macula-bootstrap.loadbalancer.json",
    "nodes": "nodes.json",
    "pods": "pods-metallb-speaker.json",
    "endpointslices.v1.discovery.k8s.io": "endpointslices-macula-bootstrap.json",
}
BROKEN = {
    "deployments.v1.apps/metallb-controller": "deployment-metallb-controller.not-ready.json",
    "daemonsets.v1.apps/metallb-speaker": "daemonset-metallb-speaker.not-ready.json",
    "ipaddresspools.v1beta1.metallb.io": "ipaddresspools.empty.json",
    "l2advertisements.v1beta1.metallb.io": "l2advertisements.empty.json",
    "services/macula-bootstrap": "service-macula-bootstrap.pending.json",
    "nodes": "nodes.excluded.json",
    "pods": "pods-metallb-speaker.json",
    "endpointslices.v1.discovery.k8s.io": "endpointslices-macula-bootstrap.not-ready.json",
}


def lan_project(directory: Path, hostname: str, port: int) -> Path:
    """A project holding the LAN plan and one stack, "lan", shaped like kind-dev, with `hostname` published
    and the bootstrap on `port`."""
    directory.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", directory / "Pulumi.yaml")
    stack_file = (PROJECT_DIR / "Pulumi.kind-dev.yaml").read_text()
    stack_file = stack_file.replace(
        "hostname: bootstrap.macula.local", f"hostname: {hostname}\n    port: {port}"
    )
    (directory / "Pulumi.lan.yaml").write_text(stack_file)
    return directory


def run_verify(
    kubectl_dir: Path, *args: str, namespace: NetNamespace | None = None
) -> subprocess.CompletedProcess[str]:
    """tools.verify with the stand-in kubectl; outside a namespace of the test's own it sends no ARP, so
    nothing reaches the test machine's own network."""
    env = {**os.environ, "PATH": f"{kubectl_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "tools.verify", *args, *([] if namespace else ["--no-arp"])]
    return subprocess.run(
        namespace.command(command) if namespace else command,
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


REFUSED = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"


def serve_refusal(directory: Path) -> str:
    """A stand-in kubectl in `directory` that fails every call as kubectl does for a switched-off cluster;
    returns kubectl's message."""
    write_kubectl(directory, STANDIN_KUBECTL)
    (directory / "objects.json").write_text(json.dumps({"error": REFUSED}))
    return REFUSED

"""`kubectl get -o json`, run the way every host-side step must run it: stdout is data, stderr is for people.

The one place that runs kubectl from Python: the program's survey of a cluster (before anything is
declared) and the tools read the cluster through it. Standard library only, like the tools that use it.
A non-zero exit is an error that says kubectl could not answer; only an empty stdout under
`--ignore-not-found` means "not there".
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shell_scripts import kubectl_target

DEFAULT_KUBECTL_TIMEOUT = 20.0
# A Kubectl's timeout bounds each call as a whole, discovery and credential plugins included. kubectl's
# own --request-timeout bounds each of its requests, not the call: on an API server that takes the
# connection and never answers, kubectl 1.32 retries its discovery and gives up only after six to eight
# times that. So the call is cut here, this long after its timeout: time for kubectl to start and to stop
# at its own deadline when it makes a single request.
KUBECTL_GRACE_SECONDS = 0.2


class KubectlError(Exception):
    """kubectl could not answer: no such context, server unreachable, forbidden, unknown resource type, …"""


@dataclass(frozen=True)
class Kubectl:
    context: str
    kubeconfig: str | None = None
    timeout: float = DEFAULT_KUBECTL_TIMEOUT
    executable: str = "kubectl"


def _run(
    kubectl: Kubectl, arguments: Sequence[str], output: str = "json"
) -> subprocess.CompletedProcess[str]:
    command = [
        kubectl.executable,
        *kubectl_target(kubectl.context, kubectl.kubeconfig),
        *arguments,
        "-o",
        output,
        # A Go duration, exact ("1.5s"); 0 would mean no timeout at all.
        f"--request-timeout={max(kubectl.timeout, 0.001):g}s",
    ]
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=kubectl.timeout + KUBECTL_GRACE_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise KubectlError(f"{kubectl.executable} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise KubectlError(f"kubectl did not answer within {kubectl.timeout:g}s") from None


def _failure(result: subprocess.CompletedProcess[str]) -> KubectlError:
    """kubectl's own last words, for a person to read; nothing is decided on them."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return KubectlError(lines[-1] if lines else f"kubectl exited with {result.returncode}")


def _parse(stdout: str) -> Any:
    if not stdout.strip():
        return None
    try:
        return json.loads(stdout)
    except ValueError:
        raise KubectlError(f"kubectl printed something that is not JSON: {stdout[:80]!r}") from None


def kubectl_get(kubectl: Kubectl, resource: str, namespace: str | None, name: str | None = None) -> Any:
    """`kubectl get -o json`, parsed: the object (a List when `name` is None); None if it does not exist.

    `namespace` is None for cluster-scoped resources such as nodes.
    """
    # A missing named object prints nothing with --ignore-not-found. A list takes it not: with it, kubectl
    # prints nothing for an empty list either, instead of a List of no items.
    what = [resource, name, "--ignore-not-found"] if name else [resource]
    result = _run(kubectl, ["get", *what, *(["-n", namespace] if namespace else [])])
    if result.returncode != 0:
        if "(NotFound)" in result.stderr:
            return None
        raise _failure(result)
    return _parse(result.stdout)


def kubectl_items(
    kubectl: Kubectl,
    targets: Sequence[str],
    *,
    namespace: str | None = None,
    all_namespaces: bool = False,
    selector: str | None = None,
) -> list[dict[str, Any]]:
    """The objects `kubectl get TARGETS` finds, as a list; absent ones are simply not in it.

    TARGETS are `TYPE/NAME` pairs or comma-joined types (`deployments.apps,daemonsets.apps`). Whatever
    kubectl cannot answer (an unreachable server, a denied request, an unknown type) raises KubectlError.
    """
    arguments = ["get", *targets, "--ignore-not-found"]
    if all_namespaces:
        arguments.append("--all-namespaces")
    elif namespace is not None:
        arguments += ["-n", namespace]
    if selector is not None:
        arguments += ["-l", selector]
    result = _run(kubectl, arguments)
    if result.returncode != 0:
        raise _failure(result)
    found = _parse(result.stdout)
    if found is None:
        return []
    if not isinstance(found, dict):
        raise KubectlError(f"kubectl printed JSON that is no object: {result.stdout[:80]!r}")
    if "items" in found:
        items = found["items"] or []
        if not isinstance(items, list):
            raise KubectlError(f"kubectl printed a List whose items are no list: {result.stdout[:80]!r}")
        return [item for item in items if isinstance(item, dict)]
    return [found]


def kubectl_metadata(kubectl: Kubectl, resource: str, namespace: str) -> list[dict[str, Any]]:
    """The metadata of every object of one type in a namespace, and nothing else of them.

    For Secrets: what they hold never reaches this process, only their names, labels and owners.
    """
    result = _run(
        kubectl,
        ["get", resource, "-n", namespace],
        output='jsonpath={range .items[*]}{.metadata}{"\\n"}{end}',
    )
    if result.returncode != 0:
        raise _failure(result)
    found = []
    for line in result.stdout.splitlines():
        if line.strip():
            metadata = _parse(line)
            if not isinstance(metadata, dict):
                raise KubectlError(f"kubectl printed metadata that is no object: {line[:80]!r}")
            found.append(metadata)
    return found

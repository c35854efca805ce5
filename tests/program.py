"""Runs the real `__main__.py` under Pulumi's mocks and records what it declares.

A run registers nothing with a real engine: the mock monitor answers every registration, and this
recorder keeps the type, name, inputs, parent, provider and dependencies of each one, plus the stack's
outputs, for tests to assert on.
"""

from __future__ import annotations

import json
import runpy
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from project_files import stack_names
from tests.kube_cluster import fake_cluster

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["name"]
STACKS = stack_names(PROJECT_DIR)


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str
    provider: str
    dependencies: list[str]
    custom: bool
    transforms: list[Any]
    delete_before_replace: bool


@dataclass
class ProgramRun:
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registration]:
        return [resource for resource in self.resources if resource.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registration:
        matches = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(matches) == 1, f"expected one {type_} {name or ''}, found {[r.name for r in matches]}"
        return matches[0]

    def by_urn(self, urn: str) -> Registration:
        return next(resource for resource in self.resources if resource.urn == urn)

    def depends_on(self, dependent: Registration, dependency: Registration) -> bool:
        """Whether `dependent` waits for `dependency`, directly or through other resources."""
        seen: set[str] = set()
        pending = list(dependent.dependencies)
        while pending:
            urn = pending.pop()
            if urn == dependency.urn:
                return True
            if urn not in seen:
                seen.add(urn)
                pending.extend(self.by_urn(urn).dependencies)
        return False


# Stands in for the address MetalLB's controller writes into a LoadBalancer Service's status.
ASSIGNED_IP = "192.0.2.10"


def _waited_address(command_text: str) -> str:
    """What wait-for-service-ip.sh prints: the pinned address (--ip), else the one MetalLB chose."""
    words = shlex.split(command_text)
    arguments = words[words.index("wait-for-service-ip.sh") + 1 :]
    return arguments[arguments.index("--ip") + 1] if "--ip" in arguments else ASSIGNED_IP


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "kubernetes:core/v1:ServicePatch":
            state["status"] = {"loadBalancer": {"ingress": [{"ip": ASSIGNED_IP}]}}
        create = state.get("create")
        if isinstance(create, dict):  # a secret: {signature: secret, value: ...}
            create = create.get("value")
        if (
            args.typ == "command:local:Command"
            and isinstance(create, str)
            and "wait-for-service-ip.sh" in create
        ):
            state["stdout"] = _waited_address(create) + "\n"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, run: ProgramRun) -> None:
        super().__init__(_Mocks())
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    inputs=rpc.deserialize_properties(request.object),
                    parent=request.parent,
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                    custom=request.custom,
                    transforms=mocks._resolve_callbacks(request.transforms),
                    delete_before_replace=request.deleteBeforeReplace,
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if "::pulumi:pulumi:Stack::" in request.urn:
            self.run.outputs = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def _engine_value(value: Any) -> str:
    """Config reaches a program as strings, with objects, lists, numbers and booleans as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def stack_file_config(stack: str) -> dict[str, Any]:
    """The config a stack's program sees: Pulumi.yaml's project defaults under the stack file's values."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    merged: dict[str, Any] = {}
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, dict) and "value" in declaration:
            merged[key if ":" in key else f"{PROJECT}:{key}"] = declaration["value"]
    stack_file = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    merged.update(stack_file.get("config") or {})
    return merged


def run_program(
    stack: str,
    config: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    run: ProgramRun | None = None,
    cluster: Iterable[dict[str, Any]] = (),
) -> ProgramRun:
    """Run `__main__.py` as stack `stack` with `config` (raw values, keys with namespace).

    The program surveys its cluster with the real kubectl before it declares anything; here that cluster
    is a fake API server holding `cluster` (empty by default). Registrations go into `run`, which a caller
    passes to look at them when the program fails.
    """
    with fake_cluster(cluster):
        return _run_program(stack, config, secret_keys, run)


def _run_program(
    stack: str, config: dict[str, Any] | None, secret_keys: list[str] | None, run: ProgramRun | None
) -> ProgramRun:
    run = ProgramRun() if run is None else run
    monitor = _RecordingMonitor(run)
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    # set_mocks leaves a finished root stack behind; the program runs in a fresh one, as under the
    # CLI, so that its exports are registered as the stack's outputs.
    settings.ROOT.set(None)
    values = stack_file_config(stack) if config is None else config
    pulumi.runtime.set_all_config(
        {key: _engine_value(value) for key, value in values.items()}, secret_keys or []
    )

    def program() -> None:
        runpy.run_path(str(PROJECT_DIR / "__main__.py"))

    _sync_await(run_in_stack(program))
    return run

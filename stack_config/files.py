"""Where the configuration comes from: Pulumi.yaml (the project, and its LAN plan), the stack files, and the
running stack's config.

The program reads its own values from the engine (`load_stack_config`); the tools read a stack file
(`load_stack_file_config`). Both read the LAN plan from Pulumi.yaml and every other stack's pools from its
file, so a problem in any of those files is one ConfigError that names the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.config
import yaml

from project_files import stack_names
from stack_config.fleet import PLAN_FILE, PLAN_KEY, Fleet, parse_lan_plan
from stack_config.model import ConfigError, LanPlan, PoolConfig, StackConfig
from stack_config.parsing import parse_other_stack_pools, parse_stack_config

# Keys whose values are text, whatever they look like: kubeContext "2024" is a context name.
TEXT_KEYS = frozenset({"kubeContext", "kubeconfig", "sshPrivateKey"})
# Config values that must be set with `pulumi config set --secret`.
SECRET_KEYS = frozenset({"sshPrivateKey"})


def _decode(key: str, value: Any) -> Any:
    """Config reaches a program as strings, with objects, lists, numbers and booleans as JSON; stack files
    hold `pulumi config set KEY true` as the string "true" too. Text keys are never decoded."""
    if key in TEXT_KEYS:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


# libyaml's parser where PyYAML has it: the cross-stack read parses every stack file on every run.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_LOADER)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path.name} is not valid YAML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path.name}: {error.strerror}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """The `config` mapping of Pulumi.yaml or a stack file; ConfigError naming the file when it is not one."""
    document = _load_yaml(path)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path.name} is not a YAML mapping (it holds {type(document).__name__})")
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: `config` is not a mapping of keys to values")
    return config


def project_namespace(project_dir: Path) -> str:
    document = _load_yaml(project_dir / PLAN_FILE)
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise ConfigError(f"{PLAN_FILE} has no project name")
    return str(document["name"])


def _lan_plan(config: dict[str, Any], namespace: str) -> LanPlan:
    """Pulumi.yaml's project-level `lan` value (`value:` under the key, as Pulumi's project schema wants)."""
    declaration = config.get(f"{namespace}:{PLAN_KEY}", config.get(PLAN_KEY))
    if not isinstance(declaration, dict) or "value" not in declaration:
        raise ConfigError(
            f"{PLAN_FILE} has no LAN plan: add {namespace}:{PLAN_KEY} under `config:`, with the LAN's subnet "
            'and reserved addresses under `value:` (see the README\'s "The LAN plan")'
        )
    return parse_lan_plan(declaration["value"], namespace)


def _holds_secret(value: Any) -> bool:
    """Whether a stack file's value is, or holds, an encrypted `secure:` value (`--secret --path` nests)."""
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_holds_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_secret(item) for item in value)
    return False


def _stack_values(config: dict[str, Any], namespace: str) -> tuple[dict[str, Any], frozenset[str]]:
    """A stack file's values under the namespace, keyed without it and decoded, with the values that hold
    secrets left out (they need the passphrase); and the keys of those."""
    prefix = f"{namespace}:"
    ours = {key[len(prefix) :]: value for key, value in config.items() if key.startswith(prefix)}
    secret = frozenset(key for key, value in ours.items() if _holds_secret(value))
    return {key: _decode(key, value) for key, value in ours.items() if key not in secret}, secret


def decode_cli_config(listing: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The values of `pulumi config --json --show-secrets` (configValueJSON in pulumi's
    pkg/cmd/pulumi/config/config.go: `value`, and `objectValue` for objects), keyed without namespace."""
    prefix = f"{namespace}:"
    values: dict[str, Any] = {}
    for key, entry in listing.items():
        if not key.startswith(prefix) or not isinstance(entry, dict):
            continue
        name = key[len(prefix) :]
        values[name] = entry["objectValue"] if "objectValue" in entry else _decode(name, entry.get("value"))
    return values


@dataclass
class Project:
    """Pulumi.yaml and every stack file, each read once."""

    namespace: str
    plan: LanPlan
    # Each stack's values, by stack name, without the values that hold secrets.
    stacks: dict[str, dict[str, Any]]
    # The keys of each stack whose values hold secrets.
    secrets: dict[str, frozenset[str]] = field(default_factory=dict)
    _pools: dict[str, tuple[PoolConfig, ...]] = field(default_factory=dict)

    def pools(self, stack: str) -> tuple[PoolConfig, ...]:
        """A stack's pools, read once; ConfigError naming its file when invalid."""
        if stack not in self._pools:
            self._pools[stack] = parse_other_stack_pools(
                self.namespace, stack, self.stacks[stack].get("pools")
            )
        return self._pools[stack]

    def fleet(self, stack: str) -> Fleet:
        """The stack's LAN plan and every other stack's pools. A stack whose cluster is on another network
        (the e2e KinD cluster on docker's) sets its own `lan` in its stack file, as Pulumi lets a stack
        override project config; every other stack uses Pulumi.yaml's."""
        own = self.stacks.get(stack, {}).get(PLAN_KEY)
        plan = self.plan if own is None else parse_lan_plan(own, self.namespace, f"Pulumi.{stack}.yaml")
        others = {
            other: self.pools(other)
            for other, values in self.stacks.items()
            if other != stack and "pools" in values
        }
        return Fleet(plan, others)

    def stack_config(self, stack: str, decrypted: Mapping[str, Any] | None = None) -> StackConfig:
        """A stack's configuration from its file, with the values that hold secrets left out (they need the
        passphrase), or, given `decrypted` (decode_cli_config of `pulumi config --show-secrets`), from
        those values with the secrets in them."""
        if stack not in self.stacks:
            raise ConfigError(
                f"no stack {stack!r}: there is no Pulumi.{stack}.yaml "
                f"(stacks: {', '.join(self.stacks) or 'none'})"
            )
        source = self.stacks[stack] if decrypted is None else decrypted
        values = {key: value for key, value in source.items() if key != PLAN_KEY}
        secret = self.secrets.get(stack, frozenset()) if decrypted is not None else frozenset()
        return parse_stack_config(stack, self.namespace, values, self.fleet(stack), secret)


def read_project(project_dir: Path) -> Project:
    namespace = project_namespace(project_dir)
    plan = _lan_plan(read_config_file(project_dir / PLAN_FILE), namespace)
    stacks, secrets = {}, {}
    for stack in stack_names(project_dir):
        stacks[stack], secrets[stack] = _stack_values(
            read_config_file(project_dir / f"Pulumi.{stack}.yaml"), namespace
        )
    return Project(namespace, plan, stacks, secrets)


def read_fleet(project_dir: Path, namespace: str, current_stack: str) -> Fleet:
    """The current stack's LAN plan and every other stack's pools (Project.fleet)."""
    return read_project(project_dir).fleet(current_stack)


def current_stack_values(namespace: str) -> tuple[dict[str, Any], frozenset[str]]:
    """Every config value of the running stack under `namespace`, decoded and keyed without namespace, and
    which of those keys are secret. The project-level LAN plan is left out: read_fleet reads it."""
    # pulumi.Config answers only for keys one asks for; typo detection needs the whole set, which the
    # language host passes in PULUMI_CONFIG and tests pass through set_all_config.
    raw = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    prefix = f"{namespace}:"
    values = {
        key[len(prefix) :]: _decode(key[len(prefix) :], value)
        for key, value in raw.items()
        if key.startswith(prefix) and key != f"{prefix}{PLAN_KEY}"
    }
    secret = frozenset(key for key in values if pulumi.runtime.config.is_config_secret(f"{prefix}{key}"))
    return values, secret


def load_stack_file_config(project_dir: Path, stack: str) -> StackConfig:
    """A stack's configuration read from its file, outside a Pulumi run (tools, not the program). A stack
    without a file is a ConfigError that lists the stacks there are."""
    return read_project(project_dir).stack_config(stack)


def load_stack_config(project_dir: Path) -> StackConfig:
    """Read and validate the running stack's configuration. Raises ConfigError before anything is declared."""
    namespace = pulumi.get_project()
    stack = pulumi.get_stack()
    values, secret = current_stack_values(namespace)
    return parse_stack_config(stack, namespace, values, read_project(project_dir).fleet(stack), secret)

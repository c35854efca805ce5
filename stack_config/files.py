"""Where the configuration comes from: Pulumi.yaml (the project, and its LAN plan), the stack files, and the
running stack's config.

The program reads its own values from the engine (`load_stack_config`); the tools read a stack file
(`load_stack_file_config`). Both read the LAN plan from Pulumi.yaml and every other stack's pools from its
file, so a problem in any of those files is one ConfigError that names the file.
"""

from __future__ import annotations

import json
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


def read_config_file(path: Path) -> dict[str, Any]:
    """The `config` mapping of Pulumi.yaml or a stack file; ConfigError naming the file when it is not one."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path.name} is not valid YAML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path.name}: {error.strerror}") from None
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
    document = yaml.safe_load((project_dir / PLAN_FILE).read_text())
    return str(document["name"])


def read_lan_plan(project_dir: Path, namespace: str) -> LanPlan:
    """Pulumi.yaml's project-level `lan` value (`value:` under the key, as Pulumi's project schema wants)."""
    config = read_config_file(project_dir / PLAN_FILE)
    declaration = config.get(f"{namespace}:{PLAN_KEY}", config.get(PLAN_KEY))
    if not isinstance(declaration, dict) or "value" not in declaration:
        raise ConfigError(
            f"{PLAN_FILE} has no LAN plan: add {namespace}:{PLAN_KEY} under `config:`, with the LAN's subnet "
            'and reserved addresses under `value:` (see the README\'s "The LAN plan")'
        )
    return parse_lan_plan(declaration["value"], namespace)


def _stack_values(project_dir: Path, namespace: str, stack: str) -> dict[str, Any]:
    """A stack file's values under the namespace, keyed without it, decoded; secure values left out."""
    prefix = f"{namespace}:"
    return {
        key[len(prefix) :]: _decode(key[len(prefix) :], value)
        for key, value in read_config_file(project_dir / f"Pulumi.{stack}.yaml").items()
        if key.startswith(prefix) and not (isinstance(value, dict) and set(value) == {"secure"})
    }


def read_fleet(project_dir: Path, namespace: str, current_stack: str) -> Fleet:
    """The current stack's LAN plan and every other stack's pools. A stack whose cluster is on another
    network (the e2e KinD cluster on docker's) sets its own `lan` in its stack file, as Pulumi lets a stack
    override project config; every other stack uses Pulumi.yaml's. A file whose plan or pools are invalid is
    a ConfigError naming it."""
    plan = read_lan_plan(project_dir, namespace)
    others: dict[str, tuple[PoolConfig, ...]] = {}
    for stack in stack_names(project_dir):
        values = _stack_values(project_dir, namespace, stack)
        if stack == current_stack:
            if PLAN_KEY in values:
                plan = parse_lan_plan(values[PLAN_KEY], namespace, f"Pulumi.{stack}.yaml")
            continue
        if "pools" in values:
            others[stack] = parse_other_stack_pools(namespace, stack, values["pools"])
    return Fleet(plan, others)


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
    """A stack's configuration read from its file, outside a Pulumi run (tools, not the program).

    Encrypted values are left out: they need the passphrase, and no tool outside the program needs them.
    A stack without a file is a ConfigError that lists the stacks there are.
    """
    known = stack_names(project_dir)
    if stack not in known:
        raise ConfigError(
            f"no stack {stack!r}: there is no Pulumi.{stack}.yaml (stacks: {', '.join(known) or 'none'})"
        )
    namespace = project_namespace(project_dir)
    fleet = read_fleet(project_dir, namespace, stack)
    values = {k: v for k, v in _stack_values(project_dir, namespace, stack).items() if k != PLAN_KEY}
    return parse_stack_config(stack, namespace, values, fleet)


def load_stack_config(project_dir: Path) -> StackConfig:
    """Read and validate the running stack's configuration. Raises ConfigError before anything is declared."""
    namespace = pulumi.get_project()
    stack = pulumi.get_stack()
    values, secret = current_stack_values(namespace)
    return parse_stack_config(stack, namespace, values, read_fleet(project_dir, namespace, stack), secret)

"""A stack's configuration as verify needs it: its secret values decrypted by the Pulumi CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from stack_config import ConfigError, StackConfig
from stack_config.files import Project, decode_cli_config, read_project

# Secret config verify has no use for: the SSH key is the DNS fix's, not a check's.
UNNEEDED_SECRETS = frozenset({"sshPrivateKey"})


def read_stack_config(
    project_dir: Path, stack: str, pulumi: str, project: Project | None = None
) -> StackConfig:
    """The stack's configuration (from `project`, when the caller has read it already). When it keeps
    values verify checks as secrets, they are decrypted with `pulumi config --show-secrets --json` (which
    needs the stack's passphrase); when that cannot be done, ConfigError names the values it cannot read."""
    project = project if project is not None else read_project(project_dir)
    needed = project.secrets.get(stack, frozenset()) - UNNEEDED_SECRETS
    if not needed:
        return project.stack_config(stack)
    command = [pulumi, "config", "--stack", stack, "--show-secrets", "--json"]
    why = ""
    try:
        result = subprocess.run(
            command, cwd=project_dir, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode == 0:
            return project.stack_config(
                stack, decode_cli_config(json.loads(result.stdout), project.namespace)
            )
        why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
    except (OSError, subprocess.TimeoutExpired, ValueError) as error:
        why = str(error)
    raise ConfigError(
        f"stack {stack} keeps {', '.join(sorted(needed))} as secrets, and `{' '.join(command)}` could not "
        f"decrypt them ({why}); set PULUMI_CONFIG_PASSPHRASE (or _FILE) and run verify where pulumi runs"
    )

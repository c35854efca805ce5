"""A stack's configuration as verify needs it: its secret values decrypted by the Pulumi CLI, and kept out
of what verify prints."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack_config import ConfigError, StackConfig
from stack_config.files import Project, decode_cli_config, read_project
from tools.process_group import run_in_own_group

# Secret config verify has no use for: the SSH key is the DNS fix's, not a check's.
UNNEEDED_SECRETS = frozenset({"sshPrivateKey"})
REDACTED = "[secret]"
# `pulumi config` reads the state; a backend that hangs must not hold verify up for good.
PULUMI_TIMEOUT = 120.0


@dataclass(frozen=True)
class StackToVerify:
    config: StackConfig
    # The decrypted texts of the values the stack keeps as secrets. verify's output goes to terminals,
    # CI logs and issues; there each of them reads REDACTED.
    secrets: frozenset[str] = frozenset()

    def redact(self, text: str) -> str:
        # Longest first, so a secret that contains another is hidden whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text


def _texts(value: Any) -> Iterator[str]:
    """Every text a config value holds, as verify could print it."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
        yield str(value)


def read_stack_config(
    project_dir: Path, stack: str, pulumi: str, project: Project | None = None
) -> StackToVerify:
    """The stack's configuration (from `project`, when the caller has read it already). When it keeps
    values verify checks as secrets, they are decrypted with `pulumi config --show-secrets --json` (which
    needs the stack's passphrase); when that cannot be done, ConfigError names the values it cannot read."""
    project = project if project is not None else read_project(project_dir)
    needed = project.secrets.get(stack, frozenset()) - UNNEEDED_SECRETS
    if not needed:
        return StackToVerify(project.stack_config(stack))
    command = [pulumi, "config", "--stack", stack, "--show-secrets", "--json"]
    why = ""
    try:
        returncode, stdout_bytes, stderr_bytes = run_in_own_group(command, project_dir, PULUMI_TIMEOUT)
        stdout, stderr = stdout_bytes.decode(), stderr_bytes.decode(errors="replace")
        if returncode == 0:
            listing = json.loads(stdout)
            if not isinstance(listing, dict):
                raise ValueError(f"it printed JSON that is no mapping of keys: {stdout[:80]!r}")
            values = decode_cli_config(listing, project.namespace)
            return StackToVerify(
                project.stack_config(stack, values),
                frozenset(text for key in needed for text in _texts(values.get(key))),
            )
        why = (stderr.strip().splitlines() or [f"exit {returncode}"])[-1]
    except (OSError, subprocess.TimeoutExpired, ValueError) as error:
        why = str(error)
    raise ConfigError(
        f"stack {stack} keeps {', '.join(sorted(needed))} as secrets, and `{' '.join(command)}` could not "
        f"decrypt them ({why}); set PULUMI_CONFIG_PASSPHRASE (or _FILE) and run verify where pulumi runs"
    )

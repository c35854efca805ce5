"""A stack's configuration as verify needs it: its secret values decrypted by the Pulumi CLI, and kept out
of what verify prints."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack_config import ConfigError, StackConfig
from stack_config.files import Project, decode_cli_config, read_project
from tools.process_group import decoded, run_in_own_group

# Secret config verify has no use for: the SSH key is the DNS fix's, not a check's.
UNNEEDED_SECRETS = frozenset({"sshPrivateKey"})
# The keys whose values verify prints: what it checks, and where it checks it.
PRINTED_KEYS = frozenset(
    {"kubeContext", "kubeconfig", "pools", "advertisements", "bootstrap", "clearLoadBalancerExclusion", "lan"}
)
REDACTED = "[secret]"
# `pulumi config` reads the state; a backend that hangs must not hold verify up for good.
PULUMI_TIMEOUT = 120.0
# What a secret may be part of and still be itself: a whole name, address or path, not a piece of one.
_WORD = r"[\w.@/-]"


@dataclass(frozen=True)
class StackToVerify:
    config: StackConfig
    # The decrypted texts of the values the stack keeps as secrets. verify's output goes to terminals,
    # CI logs and issues; there each of them reads REDACTED.
    secrets: frozenset[str] = frozenset()

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def redact(text: str, secrets: frozenset[str]) -> str:
    """`text` with each secret that stands as a whole word (not inside a longer name or address)
    replaced. Longest first, so a secret that contains another is hidden whole."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = re.sub(rf"(?<!{_WORD}){re.escape(secret)}(?!{_WORD})", REDACTED, text)
    return text


def _texts(value: Any) -> Iterator[str]:
    """Every text a config value holds, as verify could print it: an address also as Python writes it
    (the canonical form), and each end of an address range."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
        text = str(value)
        yield text
        for part in re.split(r"\s*-\s*|/", text):
            try:
                yield str(ipaddress.ip_address(part))
            except ValueError:
                continue


def secret_texts(stack: str, values: dict[str, Any], keys: frozenset[str]) -> frozenset[str]:
    """What to hide of the values of `keys`; the stack's own name, public as its file name, never."""
    return frozenset(text for key in keys for text in _texts(values.get(key))) - {stack}


def read_stack_config(
    project_dir: Path, stack: str, pulumi: str, project: Project | None = None
) -> StackToVerify:
    """The stack's configuration (from `project`, when the caller has read it already). When it keeps
    values verify checks as secrets, they are decrypted with `pulumi config --show-secrets --json` (which
    needs the stack's passphrase); when that cannot be done, ConfigError names the values it cannot read.
    No error says a decrypted value."""
    project = project if project is not None else read_project(project_dir)
    needed = project.secrets.get(stack, frozenset()) - UNNEEDED_SECRETS
    if not needed:
        return StackToVerify(project.stack_config(stack))
    command = [pulumi, "config", "--stack", stack, "--show-secrets", "--json"]
    why = ""
    try:
        returncode, stdout_bytes, stderr_bytes = run_in_own_group(command, project_dir, PULUMI_TIMEOUT)
        stdout = decoded(stdout_bytes, "pulumi", "stdout")
        stderr = stderr_bytes.decode(errors="replace")  # for a person to read
        if returncode == 0:
            listing = json.loads(stdout)
            if not isinstance(listing, dict):
                kind = type(listing).__name__
                raise ValueError(f"it printed JSON that is no mapping of keys, but a {kind}")
            values = decode_cli_config(listing, project.namespace)
            try:
                config = project.stack_config(stack, values)
            except ConfigError as error:
                # Its message quotes the values it refuses, which may be the decrypted ones.
                raise ConfigError(redact(str(error), secret_texts(stack, values, needed))) from None
            return StackToVerify(config, secret_texts(stack, values, needed & PRINTED_KEYS))
        why = (stderr.strip().splitlines() or [f"exit {returncode}"])[-1]
    except (OSError, subprocess.TimeoutExpired, ValueError) as error:
        why = str(error)
    raise ConfigError(
        f"stack {stack} keeps {', '.join(sorted(needed))} as secrets, and `{' '.join(command)}` could not "
        f"decrypt them ({why}); set PULUMI_CONFIG_PASSPHRASE (or _FILE) and run verify where pulumi runs"
    )

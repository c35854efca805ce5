"""The building blocks of every config reader here: a collector of problems, and checks of one value each.

A check adds `key: message` to the Problems of one file and returns None when the value is bad, so a reader
goes on and reports every problem of a file at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from stack_config.model import ConfigError

# Kubernetes object names (RFC 1123 subdomain), which pools and advertisements become.
OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", re.IGNORECASE)
UNIX_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
SSH_PUBLIC_KEY = re.compile(
    r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}( .*)?$"
)
SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


class Problems:
    """Collects the problems of one stack file, each as `key: message`."""

    def __init__(self, stack_file: str, namespace: str) -> None:
        self.stack_file = stack_file
        self.namespace = namespace
        self.lines: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.lines.append(f"{self.namespace}:{key}: {message}")

    def raise_if_any(self, heading: str) -> None:
        if self.lines:
            body = "\n".join(f"  - {line}" for line in self.lines)
            raise ConfigError(f"{heading} ({self.stack_file}):\n{body}")


def show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


def check_keys(problems: Problems, key: str, value: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for unknown in sorted(set(value) - set(allowed)):
        problems.add(
            f"{key}.{unknown}" if key else unknown,
            f"unknown key (known keys: {', '.join(allowed)})",
        )


def mapping(problems: Problems, key: str, value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    problems.add(key, f"expected an object, got {show(value)}")
    return None


def sequence(problems: Problems, key: str, value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    problems.add(key, f"expected a list, got {show(value)}")
    return None


def string(problems: Problems, key: str, value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    problems.add(key, f"expected a non-empty string, got {show(value)}")
    return None


def optional_bool(problems: Problems, key: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    problems.add(key, f"expected true or false, got {show(value)}")
    return None


def object_name(problems: Problems, key: str, value: Any) -> str | None:
    name = string(problems, key, value)
    if name is not None and (len(name) > 253 or not OBJECT_NAME.match(name)):
        problems.add(
            key,
            f"{show(name)} is not a valid Kubernetes object name (lower-case letters, digits, '-' and '.')",
        )
        return None
    return name


def port_number(problems: Problems, key: str, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        problems.add(key, f"{show(value)} is not a port number from 1 to 65535")
        return None
    return value


def host_name(problems: Problems, key: str, value: Any, *, qualified: bool) -> str | None:
    name = string(problems, key, value)
    if name is None:
        return None
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(HOSTNAME_LABEL.match(label) for label in labels):
        problems.add(key, f"{show(name)} is not a valid hostname (letters, digits and '-' per label)")
        return None
    if qualified and len(labels) < 2:
        problems.add(key, f"{show(name)} is not a fully qualified name like bootstrap.macula.local")
        return None
    return name


def reject_duplicates(problems: Problems, key: str, names: list[str], what: str = "name") -> None:
    for name in sorted({name for name in names if names.count(name) > 1}, key=str):
        problems.add(key, f"{what} {show(name)} is used more than once")

"""Real programs the tests drive. `make test-tools` and `make setup` install them; CI must have them."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


# Besides PATH: first the test environment's own bin (tools from requirements-dev.txt, found even when
# the venv is not activated), last the sbin directories a non-root PATH often lacks (dnsmasq, sshd).
def _search_path() -> str:
    return os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]
    )


def require_tool(name: str) -> str:
    """The path of `name`; skips the test without it on a workstation, fails it in CI (CI=true)."""
    path = shutil.which(name, path=_search_path())
    if path is not None:
        return path
    message = f"{name} is not installed; `make setup test-tools` installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)

"""Real programs the tests drive. `make test-tools` installs them; CI must have them."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """The path of `name`; skips the test without it on a workstation, fails it in CI (CI=true)."""
    path = shutil.which(name) or next(
        (candidate for d in ("/usr/sbin", "/sbin") if os.path.exists(candidate := f"{d}/{name}")), None
    )
    if path is not None:
        return path
    message = f"{name} is not installed; `make test-tools` installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)

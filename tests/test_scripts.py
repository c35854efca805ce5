"""Every shell script of the project passes shellcheck."""

from __future__ import annotations

import subprocess

import pytest

from tests.program import PROJECT_DIR
from tests.system_programs import require_tool

SCRIPTS = sorted(
    [
        *(
            p
            for p in PROJECT_DIR.rglob("*.sh")
            if p.relative_to(PROJECT_DIR).parts[0] not in {"venv", ".git"}
        ),
        PROJECT_DIR / ".ci" / "run",
    ]
)


def test_there_are_scripts_to_check():
    assert {p.name for p in SCRIPTS} >= {"wait-for-metallb-webhook.sh", "install-test-tools.sh", "run"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(PROJECT_DIR)))
def test_script_is_shellcheck_clean(script):
    shellcheck = require_tool("shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout

"""Command text that runs one of the project's scripts, with the script's text inline.

Commands embed the script instead of naming its path so that the text is the same on every machine
(drift checks run from CI, not from the machine that deployed) and so that editing the script changes
the command, which makes pulumi-command run it again; nothing else does.
"""

from __future__ import annotations

import shlex
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"


def script_command(script: str, *args: str) -> str:
    """`bash -c '<text of scripts/SCRIPT>' SCRIPT ARGS...`, quoted for a POSIX shell."""
    text = (SCRIPTS_DIR / script).read_text()
    return shlex.join(["bash", "-c", text, script, *args])


def kubectl_target(context: str, kubeconfig: str | None) -> list[str]:
    """The arguments every kubectl-driven script takes to reach the stack's cluster and no other."""
    return ["--context", context, *(["--kubeconfig", kubeconfig] if kubeconfig is not None else [])]

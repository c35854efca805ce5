"""A stand-in `kubectl` that records its arguments, for tests about what a caller passes to kubectl."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_kubectl(directory: Path, body: str) -> Path:
    """A `kubectl` in `directory` that logs its arguments to calls.jsonl, then runs `body` (Python)."""
    script = directory / "kubectl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "with open(os.path.join(here, 'calls.jsonl'), 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n" + body
    )
    script.chmod(0o755)
    return script


def calls(directory: Path) -> list[list[str]]:
    log = directory / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

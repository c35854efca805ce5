"""A command run in a process group of its own, so a timeout stops it and everything it started.

Standard library only: tools.drift runs on CI runners without the project installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_in_own_group(
    command: Sequence[str], cwd: Path, timeout: float, env: Mapping[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """The command's exit status, stdout and stderr. On timeout the whole group is killed (pulumi's
    plugins and language host with it), then subprocess.TimeoutExpired is raised."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return process.returncode, stdout, stderr


class UndecodableOutputError(ValueError):
    """A program wrote bytes that are not UTF-8."""


def decoded(data: bytes, program: str, stream: str) -> str:
    """`data` as UTF-8 text; UndecodableOutputError naming the program, the stream and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UndecodableOutputError(
            f"{program}'s {stream} is not UTF-8 (byte {data[error.start]:#04x} at offset {error.start})"
        ) from None

"""tools.process_group: a command and everything it started, stopped together on timeout."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tools.process_group import UndecodableOutputError, decoded, run_in_own_group


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has ended; only its parent has not collected it yet.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_output_and_status_come_back(tmp_path):
    result = run_in_own_group(["sh", "-c", "echo out; echo err >&2; exit 3"], tmp_path, 10)
    assert result == (3, b"out\n", b"err\n")


def test_a_timeout_stops_the_children_too(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_in_own_group(["sh", "-c", script], tmp_path, 0.5)
    assert time.monotonic() - started < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_output_that_is_not_utf8_is_named_by_program_stream_and_byte():
    assert decoded("café".encode(), "pulumi", "stdout") == "café"
    not_utf8 = r"^pulumi's stderr is not UTF-8 \(byte 0xff at offset 2\)$"
    with pytest.raises(UndecodableOutputError, match=not_utf8):
        decoded(b"ok\xff", "pulumi", "stderr")

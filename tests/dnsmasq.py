"""A real dnsmasq answering on 127.0.0.1 for the tests, and the commands scripts can call to restart it.

`Dnsmasq.start()` launches a small supervisor (this file, run as `serve STATE_DIR`) that runs dnsmasq in the
foreground on a free loopback port, reading only its own configuration: the given main file (none by
default), conf dir and options; no /etc/dnsmasq.conf, no /etc/hosts, no upstream servers. The state
directory holds the port, the options, the supervisor's pid, dnsmasq's pid file (only while dnsmasq runs,
as a real pid file) and a log of restarts, so that another process, for example
scripts/update-bootstrap-dns.sh through --pid-file and --restart-command, can find that dnsmasq and
restart it with

    python tests/dnsmasq.py restart STATE_DIR

It asks the supervisor to stop dnsmasq and start it again, waits until the new one answers (or failed to
start, with dnsmasq's own message) and so counts as one restart. `stop STATE_DIR` stops dnsmasq and leaves
it stopped, as a failed restart does; a later `restart` starts it. dnsmasq stays the supervisor's child and
the supervisor the test's, so every process is reaped. Being run as a script, this file imports nothing
from the project. The commands need the rights of the user that started the supervisor (root in the
tests).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TIMEOUT = 10.0


def program(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.path.exists(p := f"{d}/{name}")), None
    )


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq serves DNS on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


class Dnsmasq:
    """One supervised dnsmasq. `options` are dnsmasq's configuration options (`--conf-dir=...`) besides its
    main file: `conf_file` (none by default, as `--conf-file=/dev/null`)."""

    def __init__(
        self,
        state_dir: Path,
        conf_dir: Path | None = None,
        port: int | None = None,
        *,
        conf_file: Path | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.state_dir = state_dir
        state = state_dir / "state.json"
        if port is None:
            saved = json.loads(state.read_text())
            self.port, self.config = int(saved["port"]), list(saved["config"])
        else:
            self.port = port
            self.config = [
                f"--conf-file={conf_file or '/dev/null'}",
                *([f"--conf-dir={conf_dir}"] if conf_dir else []),
                *options,
            ]
            state_dir.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"port": port, "config": self.config}))
        self.conf_dir = conf_dir
        self.supervisor_pid = state_dir / "supervisor.pid"
        self.pid_file = state_dir / "dnsmasq.pid"
        self.log_file = state_dir / "dnsmasq.log"
        self.restart_log = state_dir / "restarts"
        self.failure = state_dir / "failure"
        self._supervisor: subprocess.Popen[str] | None = None

    # --- used by the tests ---------------------------------------------------------------------------

    @property
    def restart_command(self) -> str:
        """Shell command text that restarts this dnsmasq."""
        return shlex.join([sys.executable, str(Path(__file__).resolve()), "restart", str(self.state_dir)])

    @property
    def stop_command(self) -> str:
        """Shell command text that stops this dnsmasq and leaves it stopped."""
        return shlex.join([sys.executable, str(Path(__file__).resolve()), "stop", str(self.state_dir)])

    @property
    def running(self) -> bool:
        return self.pid_file.exists()

    @property
    def restarts(self) -> int:
        return len(self.restart_log.read_text().splitlines()) if self.restart_log.exists() else 0

    def start(self) -> None:
        self._supervisor = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", str(self.state_dir)],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + TIMEOUT
        while not self.supervisor_pid.exists():
            if self._supervisor.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dnsmasq did not start: {self._read_failure()}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._supervisor is None:
            return
        if self._supervisor.poll() is None:
            self._supervisor.terminate()
        try:
            _, stderr = self._supervisor.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self._supervisor.kill()
            _, stderr = self._supervisor.communicate(timeout=TIMEOUT)
        self._supervisor = None
        self.supervisor_pid.unlink(missing_ok=True)
        if stderr.strip():
            self.failure.write_text(stderr)

    def dig(self, name: str, rtype: str = "A") -> subprocess.CompletedProcess[str]:
        dig = program("dig")
        if dig is None:
            raise RuntimeError("dig is not installed")
        return subprocess.run(
            [dig, "@127.0.0.1", "-p", str(self.port), "+short", "+time=1", "+tries=1", name, rtype],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def query(self, name: str, rtype: str = "A") -> list[str]:
        """The answers for NAME, sorted (for a CNAME: the target name and its addresses)."""
        result = self.dig(name, rtype)
        if result.returncode != 0:
            raise RuntimeError(f"dig {name} failed: {result.stdout}{result.stderr}")
        return sorted(result.stdout.split())

    def _read_failure(self) -> str:
        text = self.failure.read_text().strip() if self.failure.exists() else ""
        return text or "no message"

    # --- the supervisor and the restart command -----------------------------------------------------

    def _run_dnsmasq(self) -> subprocess.Popen[str]:
        dnsmasq = program("dnsmasq")
        if dnsmasq is None:
            raise RuntimeError("dnsmasq is not installed")
        process = subprocess.Popen(
            [
                dnsmasq,
                "--keep-in-foreground",
                *self.config,
                f"--port={self.port}",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--pid-file=",
                f"--log-facility={self.log_file}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + TIMEOUT
        while self.dig("localhost").returncode != 0:
            if process.poll() is not None:
                _, stderr = process.communicate()
                raise RuntimeError(f"dnsmasq exited with {process.returncode}: {stderr.strip()}")
            if time.monotonic() > deadline:
                process.kill()
                process.communicate()
                raise RuntimeError(f"dnsmasq on port {self.port} did not answer within {TIMEOUT}s")
            time.sleep(0.01)
        self.pid_file.write_text(f"{process.pid}\n")
        return process

    def _stop_dnsmasq(self, process: subprocess.Popen[str] | None) -> None:
        self.pid_file.unlink(missing_ok=True)
        if process is not None and process.poll() is None:
            process.terminate()
            process.communicate(timeout=TIMEOUT)

    def serve(self) -> int:
        """Runs dnsmasq; SIGUSR1 restarts it (or starts it), SIGUSR2 stops it, SIGTERM ends both."""
        requests: list[int] = []
        for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
            signal.signal(signum, lambda signum, _frame: requests.append(signum))
        self.failure.unlink(missing_ok=True)
        process: subprocess.Popen[str] | None = None
        try:
            process = self._run_dnsmasq()
            self.supervisor_pid.write_text(f"{os.getpid()}\n")
            while True:
                if not requests:
                    time.sleep(0.01)
                    continue
                request = requests.pop(0)
                if request == signal.SIGTERM:
                    return 0
                self._stop_dnsmasq(process)
                process = None
                if request == signal.SIGUSR2:
                    (self.state_dir / "stopped").write_text("")
                    continue
                try:
                    process = self._run_dnsmasq()
                except RuntimeError as error:
                    self.failure.write_text(str(error))
                with self.restart_log.open("a") as log:
                    log.write(f"{'ok' if process else 'failed'} {time.time()}\n")
        except RuntimeError as error:
            self.failure.write_text(str(error))
            return 1
        finally:
            self._stop_dnsmasq(process)

    def _signal_supervisor(self, signum: signal.Signals) -> bool:
        try:
            pid = int(self.supervisor_pid.read_text())
        except (FileNotFoundError, ValueError):
            print(f"dnsmasq is not running (no {self.supervisor_pid})", file=sys.stderr)
            return False
        os.kill(pid, signum)
        return True

    def request_restart(self) -> int:
        before = self.restarts
        if not self._signal_supervisor(signal.SIGUSR1):
            return 1
        deadline = time.monotonic() + 2 * TIMEOUT
        while self.restarts == before:
            if time.monotonic() > deadline:
                print("dnsmasq did not restart in time", file=sys.stderr)
                return 1
            time.sleep(0.01)
        if self.restart_log.read_text().splitlines()[-1].startswith("failed"):
            print(f"dnsmasq failed to start: {self._read_failure()}", file=sys.stderr)
            return 1
        return 0

    def request_stop(self) -> int:
        stopped = self.state_dir / "stopped"
        stopped.unlink(missing_ok=True)
        if not self._signal_supervisor(signal.SIGUSR2):
            return 1
        deadline = time.monotonic() + TIMEOUT
        while not stopped.exists():
            if time.monotonic() > deadline:
                print("dnsmasq did not stop in time", file=sys.stderr)
                return 1
            time.sleep(0.01)
        return 0


def main(argv: list[str]) -> int:
    commands = {"serve": Dnsmasq.serve, "restart": Dnsmasq.request_restart, "stop": Dnsmasq.request_stop}
    if len(argv) != 2 or argv[0] not in commands:
        print("usage: dnsmasq.py serve|restart|stop STATE_DIR", file=sys.stderr)
        return 2
    return commands[argv[0]](Dnsmasq(Path(argv[1])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

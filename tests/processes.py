"""Helpers for tests that run real processes: the installed `fitscope` console script and a real
`mlflow server` on 127.0.0.1, started and stopped the way a user (or a crash) would.

Waits are bounded only to turn a hang into a failure with the process's output; nothing here
asserts how long anything takes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tests.conftest import empty_mlflow_store

FITSCOPE = Path(sys.executable).parent / "fitscope"
HANG_GUARD_S = 300.0  # far beyond any normal wait here; only a hang reaches it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Fitscope:
    """`fitscope ARGS...` as a subprocess in `cwd`, output kept in files (no pipe can fill up)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None,
                 new_session: bool = False) -> None:
        self.cwd = cwd
        self.out_path = cwd / f"fitscope-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        self._out: IO[str] = self.out_path.open("w")
        self._err: IO[str] = self.err_path.open("w")
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
        # new_session: its own process group, for commands that start children (`fitscope ui`)
        self.proc = subprocess.Popen([str(FITSCOPE), *argv], cwd=cwd, env=environment,
                                     stdout=self._out, stderr=self._err,
                                     start_new_session=new_session)

    def wait(self, limit: float = HANG_GUARD_S) -> int:
        try:
            code = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"fitscope did not finish:\n{self.output()}") from None
        finally:
            self._out.close()
            self._err.close()
        return code

    def output(self) -> str:
        for stream in (self._out, self._err):
            if not stream.closed:
                stream.flush()
        return (f"--- stdout\n{self.out_path.read_text()}\n"
                f"--- stderr\n{self.err_path.read_text()}")

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def interrupt(self) -> None:
        """Ctrl-C, as a terminal sends it (SIGINT to the process)."""
        self.proc.send_signal(signal.SIGINT)

    def terminate_group(self) -> None:
        """SIGTERM to the process and its children (only with `new_session=True`)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()


def wait_until(condition: Callable[[], Any], what: str, process: Fitscope | None = None,
               limit: float = HANG_GUARD_S, every: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy (and return that)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and not process.alive():
            raise AssertionError(f"fitscope ended before {what}:\n{process.output()}")
        time.sleep(every)
    detail = f":\n{process.output()}" if process is not None else ""
    raise AssertionError(f"gave up waiting for {what}{detail}")


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 that can be stopped and started again on its port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "mlflow-server.log"
        if not (folder / "mlflow.db").exists():  # an empty store: spare the server's migrations
            empty_mlflow_store(folder / "mlflow.db")

    def start(self) -> None:
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
            "--artifacts-destination", str(self.folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        # as fitscope's own server (tracking/server.py): no GenAI job runner and its huey
        # consumers, eight processes importing MLflow that would compete with the test's study
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("a") as log:
            # its own process group: `mlflow server` starts uvicorn as a child process
            self.proc = subprocess.Popen(command, cwd=self.folder, stdout=log, stderr=log,
                                         env=env, start_new_session=True)
        wait_until(self._healthy, f"mlflow server on port {self.port} (log: {self.log})",
                   every=0.25)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"mlflow server exited:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        """Stop the server and its workers (SIGTERM to its process group, as on shutdown)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        wait_until(lambda: not listening(self.port), f"port {self.port} to close")
        self.proc = None

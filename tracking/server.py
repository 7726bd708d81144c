"""A local `mlflow server` for the duration of a parallel study.

Several worker processes writing one SQLite file through MLflow's embedded store would each run
its schema checks and fight over the file lock; one server process owns the store instead and
the workers log to it over HTTP. It binds 127.0.0.1 on a free port (nothing is exposed) and
stops with the study, also on Ctrl-C or an error.

Artifacts: the server serves no artifacts (`--no-serve-artifacts`) and new experiments get the
same `./mlruns` folder MLflow's embedded store uses, so runs written through the server and runs
written by a plain `fitscope search` look alike, and `make ui` shows both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from common.children import die_with_parent
from common.errors import TrackingError
from common.masking import mask_url


class LocalMlflowServer:
    """Context manager running `mlflow server` over a backend store URI.

    Example:
        >>> with LocalMlflowServer("sqlite:///mlflow.db") as server:  # doctest: +SKIP
        ...     print(server.uri)
        http://127.0.0.1:38517
    """

    def __init__(
        self,
        backend_uri: str,
        artifact_root: Path | None = None,
        log_path: Path | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.backend_uri = backend_uri
        # MLflow's embedded default (./mlruns, absolute): the same place runs without a server use
        self.artifact_root = (artifact_root or Path("mlruns")).resolve()
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: object = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalMlflowServer:
        self.start()
        self.wait_until_ready()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Spawn the server (it takes 10-30 s to answer: do other work, then wait_until_ready)."""
        self.port = free_port()
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._log = log
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--default-artifact-root", self.artifact_root.as_uri(),
            "--no-serve-artifacts",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            # one server process: its request threads are plenty for a few workers, and each
            # extra process costs ~200 MB and its own share of the SQLite lock
            "--workers", "1",
        ]
        # MLflow 3's server also starts a job runner and seven huey consumers (GenAI jobs):
        # eight processes importing MLflow that fitscope never uses, on the workers' cores
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # in the environment, not on the command line, where `ps` would show its password
            "MLFLOW_BACKEND_STORE_URI": self.backend_uri,
        }
        self.proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env,
            # own session: a Ctrl-C typed in the terminal must not kill it before the study
            # has closed its runs; stop() ends the whole group (mlflow starts uvicorn as a child)
            start_new_session=True,
            # and if fitscope is killed (-9) before stop(): SIGTERM, which `mlflow server`
            # forwards to its uvicorn child, so no server is left answering
            preexec_fn=die_with_parent(),
        )

    def wait_until_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise TrackingError(
                    f"mlflow server on {mask_url(self.backend_uri)} exited at start "
                    f"(code {self.proc.returncode})" + self._log_hint()
                )
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        self.stop()
        raise TrackingError(f"mlflow server did not answer within {self.start_timeout:.0f} s"
                            + self._log_hint())

    def _log_hint(self) -> str:
        return f"; see {self.log_path}" if self.log_path else ""

    def stop(self) -> None:
        """End the server and its children (SIGTERM, then SIGKILL after 15 s)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _end_group(proc, grace=15.0)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()  # type: ignore[attr-defined]
            self._log = None


def _end_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    try:
        group = os.getpgid(proc.pid)
    except ProcessLookupError:
        group = proc.pid  # already gone; its children may still be in the group
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            # the group may outlive its leader for a moment (uvicorn's worker): check it is empty
            deadline = time.monotonic() + wait
            while _group_alive(group) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _group_alive(group):
                break
        except subprocess.TimeoutExpired:
            continue


def _group_alive(group: int) -> bool:
    """Whether a live (not zombie) process is left in the process group."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))

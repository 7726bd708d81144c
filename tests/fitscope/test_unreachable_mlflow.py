"""`report` and `rerun` against an MLflow server that refuses or never answers: bounded, one line
(issue 18, item 8). Real processes, so a hang is a failure, not a stuck test run."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from tests.conftest import write_spec
from tests.processes import Fitscope, free_port

LIMIT_S = 90.0  # the probe gives up after 5 s; before the fix these took 4 to 7 minutes


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _tracked_study(workdir: Path) -> Path:
    """A study of xor that names an MLflow parent run (as any tracked study does)."""
    spec = write_spec(workdir, "xor")
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{workdir / 'optuna.db'}")
    study.set_user_attr("experiment", "xor")
    study.set_user_attr("mlflow_parent_run_id", "0123456789abcdef")
    return spec


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_report_is_built_without_a_dead_mlflow_server(
    workdir: Path, silent_server: str, server: str
) -> None:
    uri = silent_server if server == "silent" else f"http://127.0.0.1:{free_port()}"
    spec = _tracked_study(workdir)
    started = time.monotonic()
    run = Fitscope(["report", str(spec), "--study", "s", "--tracking-uri", uri], cwd=workdir)
    try:
        assert run.wait(limit=LIMIT_S) == 0, run.output()
    finally:
        run.close()
    assert time.monotonic() - started < LIMIT_S
    assert "not reachable" in run.stdout
    assert "report: " in run.stdout
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_rerun_fails_in_one_line_on_a_dead_mlflow_server(
    workdir: Path, silent_server: str, server: str
) -> None:
    uri = silent_server if server == "silent" else f"http://127.0.0.1:{free_port()}"
    run = Fitscope(["rerun", "0123456789abcdef", "--tracking-uri", uri], cwd=workdir)
    try:
        assert run.wait(limit=LIMIT_S) == 2, run.output()
    finally:
        run.close()
    assert "is not reachable" in run.stderr
    assert "Traceback" not in run.stderr
    assert "no MLflow run" not in run.stderr

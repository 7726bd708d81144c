"""The tracker's writer thread: order, back-pressure, draining, and surviving a bad job."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracking.background import BackgroundWriter


def test_jobs_run_in_submission_order_off_the_calling_thread() -> None:
    writer = BackgroundWriter()
    seen: list[tuple[int, str]] = []
    for number in range(10):
        writer.submit(lambda n=number: seen.append((n, threading.current_thread().name)))
    writer.drain()
    assert [n for n, _ in seen] == list(range(10))
    assert {name for _, name in seen} == {"fitscope-tracking"}


def test_submit_blocks_once_max_pending_jobs_wait() -> None:
    writer = BackgroundWriter(max_pending=2)
    release = threading.Event()
    started = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)

    writer.submit(slow)
    assert started.wait(5)  # the thread holds the first job; the queue is empty again
    writer.submit(lambda: None)
    writer.submit(lambda: None)  # two waiting: the queue is full
    third = threading.Thread(target=writer.submit, args=(lambda: None,))
    third.start()
    third.join(0.3)
    assert third.is_alive(), "a third waiting job must block its submitter"
    release.set()
    third.join(5)
    assert not third.is_alive()
    writer.drain()


def test_a_failing_job_is_logged_and_later_jobs_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = BackgroundWriter()
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("disk full")

    with caplog.at_level(logging.ERROR, logger="tracking.background"):
        writer.submit(broken)
        writer.submit(lambda: done.append("after"))
        writer.drain()
    assert done == ["after"]
    assert "background tracking job failed" in caplog.text
    assert "disk full" in caplog.text


def test_drain_without_jobs_returns_at_once() -> None:
    BackgroundWriter().drain()


def test_a_tracker_writing_in_the_background_writes_the_same_runs_as_one_in_the_foreground(
    workdir: Path,
) -> None:
    """Both watch one study: every child run of the writer thread equals the foreground one."""
    from experiments.data import load_dataset
    from experiments.registry import load_spec
    from fitscope.session import session_for
    from search.study import StudySettings, run_study
    from tests.conftest import empty_mlflow_store, mlflow_runs, write_spec

    spec = load_spec(str(write_spec(workdir, "xor", train__max_epochs=4, train__patience=4)))
    data = load_dataset(spec)
    settings = StudySettings(study_name="both", storage=f"sqlite:///{workdir / 'optuna.db'}",
                             trials=3, timeout=None, seed=3, runs_dir=workdir / "runs")
    uris = {mode: empty_mlflow_store(workdir / f"{mode}.db")
            for mode in ("background", "foreground")}
    trackers = [
        session_for(spec, settings, uris[mode], data).mlflow(
            log_best_model=False, background=mode == "background")
        for mode in uris
    ]
    run_study(spec, data, settings, trackers)

    written = {}
    for mode, uri in uris.items():
        parent, children = mlflow_runs(uri, "xor")
        assert parent.info.status == "FINISHED"
        written[mode] = children
    assert len(written["background"]) == 3
    for back, fore in zip(written["background"], written["foreground"], strict=True):
        assert back.info.status == fore.info.status != "RUNNING"
        assert back.data.params == fore.data.params
        assert back.data.metrics == fore.data.metrics
        assert {k: v for k, v in back.data.tags.items() if not k.startswith("mlflow.")} == {
            k: v for k, v in fore.data.tags.items() if not k.startswith("mlflow.")
        }
        for run, uri in ((back, uris["background"]), (fore, uris["foreground"])):
            names = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(run.info.run_id)}
            assert {"learning_curves.png", "confusion_matrix.png"} <= names

"""The Ctrl-C guard: a Ctrl-C that a library swallowed still stops the study at the next epoch."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from search.interrupts import InterruptGuard, raise_if_interrupted


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs at the next bytecode boundary


def test_a_swallowed_ctrl_c_is_raised_again_at_the_next_checkpoint() -> None:
    guard = InterruptGuard()
    with guard:
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()
        # as if a library had caught that KeyboardInterrupt: further Ctrl-C are only noted...
        _ctrl_c()
        # ...but training's per-epoch checkpoint raises again
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()


def test_ctrl_c_during_cleanup_is_held_not_raised(capfd: pytest.CaptureFixture[str]) -> None:
    guard = InterruptGuard()
    with guard:
        guard.hold()
        _ctrl_c()
        raise_if_interrupted()  # cleanup must finish: nothing raised
    assert guard.interrupted
    assert "Ctrl-C is held" in capfd.readouterr().err


def test_no_guard_no_raise() -> None:
    raise_if_interrupted()


def test_sigterm_is_handled_like_ctrl_c() -> None:
    guard = InterruptGuard()
    with guard, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert guard.interrupted


def test_an_interrupt_inside_storage_code_waits_for_the_next_checkpoint() -> None:
    # An interrupt raised inside a SQL write, or in the driver's weakref callback that returns a
    # connection, can be swallowed or leave a transaction (and SQLite's lock) open: it is noted
    # there and raised at the next checkpoint instead.
    namespace: dict[str, object] = {"__name__": "sqlalchemy.pool.fake", "ctrl_c": _ctrl_c}
    exec("def write():\n    ctrl_c()\n    return 'committed'\n", namespace)
    guard = InterruptGuard()
    with guard:
        assert namespace["write"]() == "committed"  # type: ignore[operator]
        assert guard.interrupted
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()


def test_a_ctrl_c_a_library_turned_into_its_own_error_fails_the_trial_as_interrupted(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorFlow's device scope, left by a KeyboardInterrupt, raises "Exiting device scope
    without proper scope nesting" in its place (seen in make test, 2026-12-02): the trial was
    recorded as that RuntimeError, and the study as a failure of the training code."""
    import optuna

    import search.interrupts
    import search.training
    from experiments.data import load_dataset
    from experiments.registry import load_spec
    from search.study import StudySettings, run_study
    from tests.conftest import write_spec

    def fit_interrupted_in_a_scope(*args: object, **kwargs: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("Exiting device scope without proper scope nesting") from None

    monkeypatch.setattr(search.training, "fit_candidate", fit_interrupted_in_a_scope)
    monkeypatch.setattr(search.interrupts, "RECEIVED", None)  # earlier tests' signals aside
    spec = load_spec(str(write_spec(workdir, "xor", train__max_epochs=1, train__patience=1)))
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    settings = StudySettings(study_name="s", storage=storage, trials=3, timeout=None, seed=1,
                             runs_dir=workdir / "runs")
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, load_dataset(spec), settings, [])
    (trial,) = optuna.load_study(study_name="s", storage=storage).trials
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"] == "interrupted (Ctrl-C)"

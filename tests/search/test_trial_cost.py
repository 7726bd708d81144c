"""A study's thousandth trial costs what its first did: nothing fitscope runs per trial reads the
whole study back, and the garbage collection that ends each trial does not walk what existed
before the study started (issue 20). Optuna's own sampler and pruner do read the study, by design;
they are not fitscope's to change and the scale benchmark (bench/scale.py) measures them apart.
"""

from __future__ import annotations

import gc
import inspect
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import InMemoryStorage

from experiments.data import load_dataset
from experiments.registry import load_spec
from fitscope.session import session_for
from search import inputs
from search.study import open_study, run_study
from tests.conftest import write_spec

PROJECT = ("fitscope", "search", "tracking", "reports", "analysis", "experiments", "common")
OPTUNA_PLUMBING = ("optuna/storages/", "optuna/study/study.py", "optuna/trial/")
PER_TRIAL = {"__call__", "tell_observers"}  # the Objective and the observers' per-trial hook


def _module(frame: inspect.FrameInfo) -> str:
    return str(frame.frame.f_globals.get("__name__", ""))


class FreezeWatcher:
    """Observer noting, as each trial ends, how many objects the garbage collector skips."""

    def __init__(self) -> None:
        self.frozen: list[int] = []
        self.tensors: list[int] = []

    def on_study_start(self, study: Any, spec: Any) -> None:
        pass

    def on_trial_end(self, study: Any, record: Any) -> None:
        self.frozen.append(gc.get_freeze_count())
        self.tensors.append(len(inputs._TENSORS))

    def on_study_end(self, study: Any, outcome: str) -> None:
        pass


class ScanRecordingStorage(InMemoryStorage):
    """Optuna's in-memory storage that notes every full read of a study's trials that fitscope's
    own code asks for while a trial runs or is being recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.scans: list[str] = []
        self.optunas = 0  # per-trial reads by Optuna itself (its sampler): the hook sees them

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> Any:
        stack = inspect.stack(0)[1:]
        per_trial = any(f.function in PER_TRIAL and _module(f) == "search.study" for f in stack)
        # the first frame past Optuna's study and storage plumbing is the one that asked
        asker = next(f for f in stack
                     if not any(part in f.filename for part in OPTUNA_PLUMBING))
        if per_trial and _module(asker).split(".")[0] in PROJECT:
            self.scans.append(f"{_module(asker)}.{asker.function}:{asker.lineno}")
        elif per_trial:
            self.optunas += 1
        return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)


def test_no_per_trial_code_of_fitscope_reads_all_trials(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_spec(str(write_spec(workdir, "xor", train__max_epochs=3, train__patience=3,
                                    search__pruner="median", search__startup_trials=1)))
    data = load_dataset(spec)
    from fitscope.session import study_settings

    settings = study_settings(spec, tracking_uri, "scans", trials=3)
    storage = ScanRecordingStorage()
    study = open_study(spec, settings, storage=storage)
    session = session_for(spec, settings, tracking_uri, data)
    tracker = session.mlflow(log_best_model=False, background=False)  # writes inside the hook
    watcher = FreezeWatcher()
    run_study(spec, data, settings, [tracker, session.console(tracker), watcher], study=study)

    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 1 and len(states) == 3
    assert storage.scans == []
    assert storage.optunas > 0  # TPE read the study per trial, and the hook told it apart
    assert "#  2" in capsys.readouterr().out  # the console did print every trial
    # Keras' clear_session() collects after every trial: TensorFlow's import and the study's
    # loaded trials (hundreds of thousands of objects) stay frozen out of it while trials run,
    # and are handed back to the collector when the loop ends
    assert len(watcher.frozen) == 3 and min(watcher.frozen) > 100_000
    assert gc.get_freeze_count() == 0
    # the study's data is copied into TensorFlow once for all trials, and not kept past them
    assert min(watcher.tensors) > 0 and not inputs._TENSORS


def test_a_short_trial_writes_its_attrs_in_three_statements(
    workdir: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who runs it, what it tried, and its result with its final curves: one INSERT each (a trial
    shorter than the curve saver's interval), however many attrs each holds."""
    from sqlalchemy import event

    from fitscope.session import study_settings
    from search import study as study_module

    monkeypatch.setattr(study_module._CurveSaver, "INTERVAL", 3600.0)  # "shorter" by definition
    spec = load_spec(str(write_spec(workdir, "xor", train__max_epochs=4, train__patience=4,
                                    search__pruner="none")))
    settings = study_settings(spec, tracking_uri, "writes", trials=2,
                              storage=f"sqlite:///{workdir / 'optuna.db'}")
    study = open_study(spec, settings)
    inserts: list[str] = []
    event.listen(study._storage._backend.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: inserts.append(sql)
                 if sql.lstrip().startswith("INSERT INTO trial_user_attributes") else None)
    run_study(spec, load_dataset(spec), settings, [], study=study)

    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert len(inserts) == 3 * len(trials), inserts
    for trial in trials:
        epochs = len(trial.user_attrs["history"]["loss"])
        assert epochs == 4 and len(trial.user_attrs["history"]["val_loss"]) == epochs
        assert {"worker", "params", "settings", "best_val_loss", "test"} <= set(trial.user_attrs)

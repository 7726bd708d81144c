"""Sampler seeds: a resumed study or a second process on it draws new candidates (issue 18,
item 6), while a fresh one-worker study repeats trial by trial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from experiments.registry import load_spec
from search.study import make_sampler
from tests.conftest import write_spec


def _draw(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_int("n", 1, 1000)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_study_does_not_replay_its_trials(tmp_path: Path, sampler: str) -> None:
    spec = load_spec(str(write_spec(tmp_path, "xor", search__sampler=sampler)))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = optuna.create_study(study_name="s", storage=storage, sampler=make_sampler(spec, 7))
    first.optimize(_draw, n_trials=3)
    # the same command again: a new process, the same study seed
    again = optuna.load_study(study_name="s", storage=storage, sampler=make_sampler(spec, 7))
    again.optimize(_draw, n_trials=3)
    params = [tuple(t.params.values()) for t in again.trials]
    assert len(set(params)) == 6, params


def test_two_processes_on_one_study_draw_different_candidates(tmp_path: Path) -> None:
    spec = load_spec(str(write_spec(tmp_path, "xor", search__sampler="random")))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="s", storage=storage)
    one = optuna.load_study(study_name="s", storage=storage, sampler=make_sampler(spec, 7))
    two = optuna.load_study(study_name="s", storage=storage, sampler=make_sampler(spec, 7))
    a, b = one.ask(), two.ask()  # both started before either finished
    assert (a.suggest_float("x", 0, 1), a.suggest_int("n", 1, 1000)) != (
        b.suggest_float("x", 0, 1), b.suggest_int("n", 1, 1000))


def test_a_fresh_study_repeats_trial_by_trial(tmp_path: Path) -> None:
    spec = load_spec(str(write_spec(tmp_path, "xor", search__sampler="random")))
    runs = []
    for name in ("a", "b"):
        study = optuna.create_study(sampler=make_sampler(spec, 7), study_name=name)
        study.optimize(_draw, n_trials=4)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]

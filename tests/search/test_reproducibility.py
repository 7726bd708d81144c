"""Whole studies repeat: same experiment, seed and trial count (one worker) -> same trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from experiments.data import load_dataset
from experiments.registry import load_spec
from search.seeding import seed_everything
from search.study import StudySettings, run_study
from tests.conftest import write_spec


def _study(folder: Path, spec_path: Path, seed: int) -> list[dict[str, Any]]:
    """Run a fresh 2-trial study in its own storage; what each trial chose and reached."""
    spec = load_spec(str(spec_path)).with_search(seed=seed)
    folder.mkdir()
    settings = StudySettings(
        study_name="repro", storage=f"sqlite:///{folder / 'optuna.db'}", trials=2, timeout=None,
        seed=seed, runs_dir=folder / "runs",
    )
    study = run_study(spec, load_dataset(spec), settings, observers=[])
    return [
        {
            "state": t.state.name,
            "params": t.params,
            "seed": t.user_attrs["settings"]["seed"],
            "val_loss": t.user_attrs["history"]["val_loss"],
            "best_val_loss": t.user_attrs.get("best_val_loss"),
        }
        for t in study.trials
    ]


@pytest.fixture(scope="module")
def iris_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # startup_trials=1: trial 1 is proposed by TPE (and may be pruned), so the sampler's model
    # and the pruner's decisions are repeated too, not only random draws
    return write_spec(tmp_path_factory.mktemp("spec"), "iris", train__max_epochs=4,
                      train__patience=3, search__startup_trials=1, search__warmup_epochs=2)


def test_same_seed_gives_the_same_trials_and_losses(tmp_path: Path, iris_spec: Path) -> None:
    # seed 2: TPE's trial 1 is worse than trial 0 at epoch 2 and pruned, so the pruner's
    # decision is really repeated, not only the sampler's draws (issue 19)
    first = _study(tmp_path / "a", iris_spec, seed=2)
    second = _study(tmp_path / "b", iris_spec, seed=2)
    assert [t["state"] for t in first] == ["COMPLETE", "PRUNED"]
    assert [t["state"] for t in first] == [t["state"] for t in second]
    assert [t["params"] for t in first] == [t["params"] for t in second]
    assert [t["seed"] for t in first] == [t["seed"] for t in second]
    # bitwise, trial by trial: every epoch's val loss and the best one
    assert [t["val_loss"] for t in first] == [t["val_loss"] for t in second]
    assert [t["best_val_loss"] for t in first] == [t["best_val_loss"] for t in second]
    assert len({t["seed"] for t in first}) == 2  # each trial its own seed, from the study seed
    storage = f"sqlite:///{tmp_path / 'a' / 'optuna.db'}"
    assert optuna.load_study(study_name="repro", storage=storage).user_attrs["seed"] == 2


def test_another_seed_gives_other_trials(tmp_path: Path, iris_spec: Path) -> None:
    first = _study(tmp_path / "a", iris_spec, seed=7)
    other = _study(tmp_path / "b", iris_spec, seed=8)
    assert [t["params"] for t in first] != [t["params"] for t in other]
    assert all(a["params"] != b["params"] for a, b in zip(first, other, strict=True))
    assert [t["best_val_loss"] for t in first] != [t["best_val_loss"] for t in other]


def test_determinism_switch_is_truthful_in_a_process_that_had_it_on() -> None:
    # TensorFlow op determinism is process-wide: a non-deterministic trial after a
    # deterministic one must really run without it, as its `deterministic` param says
    from tensorflow.python.framework import config as tf_config

    seed_everything(1, deterministic=True)
    assert tf_config.is_op_determinism_enabled()
    seed_everything(1, deterministic=False)
    assert not tf_config.is_op_determinism_enabled()
    seed_everything(1, deterministic=True)
    assert tf_config.is_op_determinism_enabled()


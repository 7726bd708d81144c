"""A trial's result attrs reach the storage in one transaction on SQLite and PostgreSQL, with
Optuna's own rules (a finished trial refuses them) and all or nothing; other storages get them
one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import event

from search.batched_attrs import set_user_attrs
from search.storage import open_storage
from tests.postgres import Cluster

ATTRS = {"best_epoch": 3, "best_val_loss": 0.25, "n_params": 33, "train_seconds": 0.4,
         "test": {"test_loss": 0.3, "test_accuracy": 0.9}, "model_summary": "Model: x",
         "confusion_matrix": [[2, 0], [1, 1]], "classification_report": "accuracy 0.75",
         "model_path": "/runs/trial-00001.keras"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    cluster: Cluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"batched_{abs(hash(str(tmp_path))) % 10**8}")


def commits(storage: Any) -> list[int]:
    """A list that grows by one at every commit of the storage's engine."""
    seen: list[int] = []
    event.listen(storage._backend.engine, "commit", lambda _conn: seen.append(1))
    return seen


def test_the_attrs_are_committed_once_and_read_back(url: str) -> None:
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    trial = study.ask()
    trial.set_user_attr("worker", "host:1")
    seen = commits(study._storage)
    set_user_attrs(trial, ATTRS)
    assert len(seen) == 1
    assert trial.user_attrs == {"worker": "host:1", **ATTRS}
    study.tell(trial, 0.25)
    again = optuna.load_study(study_name="s", storage=open_storage(url))
    assert again.trials[0].user_attrs == {"worker": "host:1", **ATTRS}


def statements(storage: Any) -> list[str]:
    """Every SQL statement the storage's engine sends from now on."""
    seen: list[str] = []
    event.listen(storage._backend.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(statement))
    return seen


def test_a_batch_is_one_check_and_one_upsert_whatever_its_size(url: str) -> None:
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    trial = study.ask()
    sent = statements(study._storage)
    set_user_attrs(trial, ATTRS)
    writes = [s for s in sent if not s.lstrip().upper().startswith(("SELECT", "PRAGMA"))]
    assert len(writes) == 1, writes  # one row per attr would be one INSERT per attr
    assert len(sent) <= 3, sent  # the running check (and a pre-ping) besides


def test_an_attr_set_before_is_overwritten(url: str) -> None:
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    trial = study.ask()
    trial.set_user_attr("history", {"loss": [1.0]})
    set_user_attrs(trial, {"history": {"loss": [1.0, 0.5]}, "best_epoch": 1})
    study.tell(trial, 0.5)
    again = optuna.load_study(study_name="s", storage=open_storage(url))
    assert again.trials[0].user_attrs == {"history": {"loss": [1.0, 0.5]}, "best_epoch": 1}


def test_a_value_that_cannot_be_stored_keeps_none_of_the_batch(url: str) -> None:
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    trial = study.ask()
    with pytest.raises(TypeError):
        set_user_attrs(trial, {"best_epoch": 3, "model": object()})
    assert study.trials[0].user_attrs == {}
    set_user_attrs(trial, {"best_epoch": 3, "best_val_loss": 0.1})  # the session is usable again
    assert study.trials[0].user_attrs == {"best_epoch": 3, "best_val_loss": 0.1}


def test_a_finished_trial_refuses_them_as_optuna_does(url: str) -> None:
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial.set_user_attr("best_epoch", 1)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(trial, ATTRS)
    assert study.trials[0].user_attrs == {}


def test_other_storages_get_them_one_by_one(tmp_path: Path) -> None:
    for storage in (optuna.storages.InMemoryStorage(), open_storage(str(tmp_path / "s.journal"))):
        study = optuna.create_study(storage=storage)
        trial = study.ask()
        set_user_attrs(trial, ATTRS)
        study.tell(trial, 0.25)
        assert study.trials[0].user_attrs == ATTRS

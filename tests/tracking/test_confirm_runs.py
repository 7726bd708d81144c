"""The registry alias `best` after `fitscope confirm` (issue 17, deferred to issue 16), on a real
SQLite model registry. Shown failing with `move_alias_to` returning before it sets the alias."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.conftest import empty_mlflow_store
from tracking.best_model import BEST_ALIAS
from tracking.confirm_runs import move_alias_to


def test_the_alias_moves_to_the_confirmed_winner_of_the_same_study(tmp_path: Path) -> None:
    client = MlflowClient(empty_mlflow_store(tmp_path / "mlflow.db"))
    client.create_registered_model("iris")
    first = client.create_model_version("iris", str(tmp_path / "a"), tags={"study": "s",
                                                                           "trial": "0"})
    later = client.create_model_version("iris", str(tmp_path / "b"), tags={"study": "s",
                                                                           "trial": "3"})
    client.set_registered_model_alias("iris", BEST_ALIAS, first.version)

    assert move_alias_to(client, "iris", "s", 3) == "alias best moved to trial 3 (version 2)"
    assert client.get_model_version_by_alias("iris", BEST_ALIAS).version == later.version
    assert "already on trial 3" in move_alias_to(client, "iris", "s", 3)
    # a confirmed winner that never led the study has no version: the alias stays
    assert "trial 5 has no registered model" in move_alias_to(client, "iris", "s", 5)
    # another study holds it: confirm of study "t" leaves it alone
    assert "stays on study 's'" in move_alias_to(client, "iris", "t", 0)
    assert client.get_model_version_by_alias("iris", BEST_ALIAS).version == later.version


def test_no_registered_model_leaves_the_alias_alone(tmp_path: Path) -> None:
    client = MlflowClient(empty_mlflow_store(tmp_path / "mlflow.db"))
    assert "no registered model iris holds it" in move_alias_to(client, "iris", "s", 1)

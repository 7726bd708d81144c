"""The registered winner (issue 17): an image model takes raw 28x28 pixels and names a wrong
shape; the alias `best` moves only to a better model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from common.errors import InputError
from experiments.data.raw_inputs import RawInputs
from search.record import TrialRecord
from tests.conftest import empty_mlflow_store
from tracking.best_model import BEST_ALIAS, Winner, log_best_model, move_best_alias

CLASSES = tuple(f"c{i}" for i in range(10))


def _record(number: int, model_path: str | None = None) -> TrialRecord:
    return TrialRecord(number, "COMPLETE", {}, {}, {}, 1, 0.5, 2, 10, 1.0, {}, None,
                       model_path=model_path)


def _winner(study: str, number: int, val_loss: float, data: str = "d1",
            model_path: str | None = None, parent: str = "p") -> Winner:
    return Winner("fashion", study, parent, f"run{number}", _record(number, model_path),
                  val_loss, data)


@pytest.mark.slow  # logs, registers and loads a pyfunc with TensorFlow: 20-40 s on 2 cores
def test_an_image_winner_takes_raw_pixels_and_names_a_wrong_shape(tmp_path: Path) -> None:
    import keras
    import mlflow

    keras.utils.set_random_seed(0)
    network = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    network.save(tmp_path / "trial.keras")
    inputs = RawInputs(kind="images", task="multiclass", class_names=CLASSES,
                       example=np.zeros((2, 28, 28), np.float32), scale="divide255")
    uri = empty_mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("fashion")
    parent = client.create_run(experiment).info.run_id
    winner = _winner("s1", 3, 0.4, model_path=str(tmp_path / "trial.keras"), parent=parent)

    log_best_model(client, uri, winner, lambda: inputs)

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/fashion@best")
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, 28, 28)
    pixels = np.random.default_rng(0).integers(0, 256, (4, 28, 28)).astype(np.float32)
    predicted = model.predict(pixels)
    expected = network.predict(pixels.reshape(4, 784) / 255, verbose=0)
    np.testing.assert_allclose(predicted[[f"prob_{c}" for c in CLASSES]], expected, rtol=1e-5)
    assert list(predicted["prediction"]) == [CLASSES[i] for i in expected.argmax(axis=1)]
    with pytest.raises(InputError, match="28x28 pixels.*got shape 4 x 32 x 32"):
        model.unwrap_python_model().check(np.zeros((4, 32, 32)))
    version = client.get_model_version_by_alias("fashion", BEST_ALIAS)
    assert version.tags["trial"] == "3" and version.tags["study"] == "s1"
    assert client.get_run(parent).data.tags["best_model_version"] == str(version.version)


def test_the_best_alias_moves_only_to_a_better_model(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=empty_mlflow_store(tmp_path / "mlflow.db"))
    client.create_registered_model("fashion")

    def version(winner: Winner) -> str:
        tags = {"study": winner.study, "val_loss": repr(winner.val_loss),
                "data_sha256": winner.data_sha256 or ""}
        made = client.create_model_version("fashion", str(tmp_path), tags=tags)
        return str(made.version)

    def holder() -> str:
        return str(client.get_model_version_by_alias("fashion", BEST_ALIAS).version)

    first = _winner("s1", 0, 0.50)
    assert move_best_alias(client, first, version(first)) and holder() == "1"
    worse_study = _winner("s2", 0, 0.60)
    assert not move_best_alias(client, worse_study, version(worse_study)) and holder() == "1"
    resumed = _winner("s1", 7, 0.55)  # the same study's newer best: its data and split agree
    assert move_best_alias(client, resumed, version(resumed)) and holder() == "3"
    better = _winner("s3", 2, 0.30)
    assert move_best_alias(client, better, version(better)) and holder() == "4"
    new_data = _winner("s4", 1, 0.90, data="d2")  # losses on other data do not compare
    assert move_best_alias(client, new_data, version(new_data)) and holder() == "5"

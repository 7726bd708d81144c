"""The study's winner as a model people use: logged on the parent run, registered, aliased.

The best trial's Keras network is logged once per best trial as the pyfunc model `best_model`
(tracking/winner_pyfunc.py): it carries the fitted preprocessing, so it takes raw rows or raw
images, with an input signature and an input example. It is registered in the MLflow Model
Registry as `<experiment>`, each version tagged with its study, trial, run and val loss, and the
alias `best` is moved to it (`models:/<experiment>@best`) when it beats the version holding
the alias (see `move_best_alias`).
"""

from __future__ import annotations

import logging
import math
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import FitscopeError
from common.text import first_line
from tracking.fingerprint import DATA_TAG, package_versions

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from experiments.data.raw_inputs import RawInputs
    from search.record import TrialRecord

log = logging.getLogger(__name__)
BEST_MODEL_TAG = "best_model_trial"  # which trial's model the parent holds
MODEL_NAME = "best_model"  # the parent run's logged model
BEST_ALIAS = "best"
MODEL_VERSION_TAG = "best_model_version"  # on the parent: the registered version of its model
REQUIREMENTS = ("keras", "tensorflow", "numpy", "pandas", "scikit-learn")


@dataclass(frozen=True)
class Winner:
    """Which trial won, and where: what a registered version is tagged with."""

    experiment: str  # the registered model's name
    study: str
    parent_run_id: str
    trial_run_id: str | None
    record: TrialRecord
    val_loss: float
    data_sha256: str | None


def log_best_model(
    client: MlflowClient,
    tracking_uri: str,
    winner: Winner,
    raw_inputs: Callable[[], RawInputs],
) -> None:
    """Log `winner`'s saved network with its preprocessing as `best_model` on the parent and
    register it, unless the parent holds that trial's model already."""
    best, parent = winner.record, winner.parent_run_id
    tags = client.get_run(parent).data.tags
    if tags.get(BEST_MODEL_TAG) == str(best.number):
        return
    if not best.model_path or not Path(best.model_path).is_file():
        log.warning("best trial %d's model file is not on this machine; not logged", best.number)
        return
    import mlflow

    from tracking.winner_pyfunc import INPUTS_ARTIFACT, KERAS_ARTIFACT, WinnerModel

    try:
        inputs = raw_inputs()
    except FitscopeError as exc:  # the data moved since the study loaded it: the study stands
        log.warning("best model not logged: its preprocessing cannot be fitted again: %s", exc)
        return
    mlflow.set_tracking_uri(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="fitscope-model-") as tmp:
        inputs_path = Path(tmp) / "raw_inputs.pkl"
        inputs_path.write_bytes(pickle.dumps(inputs))
        artifacts = {KERAS_ARTIFACT: best.model_path, INPUTS_ARTIFACT: str(inputs_path)}
        with mlflow.start_run(run_id=parent):
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=WinnerModel(),
                artifacts=artifacts,
                signature=_signature(inputs, artifacts),
                input_example=inputs.example,
                # explicit: inferring them imports the model in a subprocess (~10 s)
                pip_requirements=_requirements(),
            )
    client.set_tag(parent, BEST_MODEL_TAG, str(best.number))
    version = register(client, winner, info.model_uri, info.model_id)
    if version is not None:
        client.set_tag(parent, MODEL_VERSION_TAG, version)


def register(
    client: MlflowClient, winner: Winner, model_uri: str, model_id: str | None = None
) -> str | None:
    """Register `model_uri` as a new version of `<experiment>`, tagged, and move the alias
    `best` when it wins; None where the store has no model registry (a file store)."""
    from mlflow.exceptions import MlflowException

    tags = {
        "study": winner.study,
        "trial": str(winner.record.number),
        "run": winner.trial_run_id or "",
        "parent_run": winner.parent_run_id,
        "val_loss": repr(winner.val_loss),
        DATA_TAG: winner.data_sha256 or "",
    }
    try:
        try:
            client.get_registered_model(winner.experiment)
        except MlflowException:
            client.create_registered_model(
                winner.experiment,
                description=f"Best networks of fitscope's {winner.experiment} studies; "
                f"alias {BEST_ALIAS} is the one to use.",
            )
        version = client.create_model_version(
            # model_id: an MLflow server refuses a `models:/m-...` source without it
            winner.experiment, model_uri, run_id=winner.parent_run_id, tags=tags,
            model_id=model_id,
            description=f"trial {winner.record.number} of study {winner.study}, "
            f"val_loss {winner.val_loss:.4g}",
        )
    except MlflowException as exc:
        log.warning("model registry unavailable (%s); the best model stays on run %s",
                    first_line(exc), winner.parent_run_id)
        return None
    move_best_alias(client, winner, str(version.version))
    return str(version.version)


def move_best_alias(client: MlflowClient, winner: Winner, version: str) -> bool:
    """Point `best` at `version` when it is the better model; True if it moved.

    It moves when no version holds it, when the holder comes from the same study (a resumed
    study's best only improves), when the holder was trained on other data (its val loss is
    not comparable; the newest data wins), or when the new val loss is lower.
    """
    from mlflow.exceptions import MlflowException

    try:
        holder = client.get_model_version_by_alias(winner.experiment, BEST_ALIAS)
    except MlflowException:
        holder = None
    if holder is not None and str(holder.version) != version:
        held = holder.tags
        same_data = held.get(DATA_TAG, "") == (winner.data_sha256 or "")
        try:
            held_loss = float(held.get("val_loss", "nan"))
        except ValueError:
            held_loss = math.nan
        better = math.isnan(held_loss) or winner.val_loss < held_loss
        if held.get("study") != winner.study and same_data and not better:
            return False
    client.set_registered_model_alias(winner.experiment, BEST_ALIAS, version)
    return True


def _signature(inputs: RawInputs, artifacts: dict[str, str]) -> Any:
    """Input schema from the raw inputs; output schema from predicting the input example."""
    import keras
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from pandas.api.types import is_numeric_dtype

    from tracking.winner_pyfunc import KERAS_ARTIFACT, predictions

    if inputs.kind == "images":
        schema = Schema([TensorSpec(np.dtype(np.float32), (-1, *inputs.example.shape[1:]))])
    else:
        schema = Schema([ColSpec(kind, name, required=required)
                         for name, kind, required in inputs.schema()])
    network = keras.saving.load_model(artifacts[KERAS_ARTIFACT], compile=False)
    try:
        outputs = predictions(inputs, network, inputs.example)
    finally:
        # no full gc.collect() (free_memory): it walks every object TensorFlow left, ~1 s on 2
        # cores at each study's end, for one small model that Python's own collector frees later
        keras.backend.clear_session(free_memory=False)
    columns: list[ColSpec | TensorSpec] = [
        ColSpec("double" if is_numeric_dtype(out) else "string", str(out.name))
        for _, out in outputs.items()
    ]
    return ModelSignature(inputs=schema, outputs=Schema(columns))


def _requirements() -> list[str]:
    from importlib import metadata

    versions = package_versions()
    found = []
    for name in REQUIREMENTS:
        version = versions.get(name)
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        found.append(f"{name}=={version}")
    return found

"""The best trial's Keras model, logged on the study's parent run (once per best trial)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracking.fingerprint import package_versions

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from search.record import TrialRecord

log = logging.getLogger(__name__)
BEST_MODEL_TAG = "best_model_trial"  # which trial's model the parent holds


def log_best_model(
    client: MlflowClient, tracking_uri: str, parent_run_id: str, best: TrialRecord
) -> None:
    """Log `best`'s saved model as `best_model` on the parent, unless it holds it already."""
    tags = client.get_run(parent_run_id).data.tags
    if tags.get(BEST_MODEL_TAG) == str(best.number):
        return
    if not best.model_path or not Path(best.model_path).is_file():
        log.warning("best trial %d's model file is not on this machine; not logged", best.number)
        return
    import keras
    import mlflow

    model = keras.saving.load_model(best.model_path)
    versions = package_versions()
    # explicit requirements: MLflow's inference imports the model in a subprocess (~10 s)
    requirements = [
        f"{name}=={versions[name]}" for name in ("keras", "tensorflow", "numpy") if name in versions
    ]
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=parent_run_id):
        mlflow.keras.log_model(
            model,
            name="best_model",
            pip_requirements=requirements,
            signature=_signature_for(model),
        )
    client.set_tag(parent_run_id, BEST_MODEL_TAG, str(best.number))
    keras.backend.clear_session()


def _signature_for(model: Any) -> Any:
    """Input/output schema from the model's own shapes (no data needed)."""
    import numpy as np
    from mlflow.models import infer_signature

    example = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    return infer_signature(example, np.asarray(model.predict(example, verbose=0)))

"""`fitscope predict`: a study's winner on new raw data, through the model MLflow serves.

The model is loaded by URI (default `models:/<experiment>@best`, the registry alias every study
moves to its best trial), so `fitscope predict`, `mlflow.pyfunc.load_model` and `mlflow models
serve` run the same code on the same artifacts: the fitted preprocessing and the network.

Example:
    >>> result = predict_file("sqlite:///mlflow.db", "titanic", "new.csv")  # doctest: +SKIP
    >>> list(result.frame.columns)  # doctest: +SKIP
    ['prediction', 'prob_0', 'prob_1']
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import InputError, TrackingError
from common.masking import mask_url
from common.text import first_line
from experiments.data.raw_inputs import read_input_file


@dataclass(frozen=True)
class Prediction:
    """Predictions for the rows (or images) of one input file, in their order."""

    frame: Any  # pandas DataFrame: prediction, prob_<class>...
    model_uri: str
    rows: int


def default_model_uri(experiment: str) -> str:
    """The registered winner of an experiment's studies.

    Example:
        >>> default_model_uri("titanic")
        'models:/titanic@best'
    """
    return f"models:/{experiment}@best"


def load_model(tracking: str, model_uri: str, experiment: str) -> Any:
    """The pyfunc model at `model_uri` in the store `tracking`.

    Raises:
        TrackingError: no such model (or no store), as one line with what to do.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if tracking.startswith("sqlite:///") and not Path(tracking.removeprefix("sqlite:///")).is_file():
        # MLflow would create an empty store there and then not find the model
        raise TrackingError(f"no MLflow store at {mask_url(tracking)} (--tracking-uri, "
                            "MLFLOW_TRACKING_URI)")
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # env-mismatch notes: not the user's
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking)
    try:
        return mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        hint = (f"; run `fitscope search {experiment}` first, or give --model"
                if model_uri == default_model_uri(experiment) else "")
        raise TrackingError(f"cannot load model {model_uri} from {mask_url(tracking)}: "
                            f"{first_line(exc)}{hint}") from None


def predict_file(
    tracking: str, experiment: str, input_path: str | Path, model_uri: str | None = None
) -> Prediction:
    """Predict every row (or image) of `input_path` with the experiment's winner.

    Raises:
        InputError: the file or its contents do not fit the model (one line naming the column
            or the shape).
        TrackingError: the model cannot be loaded.
    """
    from mlflow.exceptions import MlflowException

    if not Path(input_path).is_file():  # before TensorFlow loads with the model
        raise InputError(f"{input_path}: no such file")
    uri = model_uri or default_model_uri(experiment)
    model = load_model(tracking, uri, experiment)
    inputs = getattr(model.unwrap_python_model(), "inputs", None)
    if inputs is None:
        raise InputError(f"{uri} is not a fitscope model (it has no raw-input preprocessing)")
    raw = read_input_file(input_path, inputs.kind)
    # checked and typed first, so a bad file gets fitscope's one line, not MLflow's schema dump
    ready = inputs.check(raw) if inputs.kind == "images" else inputs.conform(raw)
    try:
        frame = model.predict(ready)
    except MlflowException as exc:
        raise InputError(f"{input_path}: {first_line(exc)}") from None
    return Prediction(frame=frame, model_uri=uri, rows=len(frame))

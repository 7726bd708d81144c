"""The MLflow pyfunc model of a study's winner: raw rows or raw images in, predictions out.

It wraps the fitted preprocessing (experiments/data/raw_inputs.py, pickled) and the best
trial's Keras model (its .keras file), both stored as the model's artifacts, so
`models:/<experiment>@best` takes the CSV's columns as the user has them, or 28x28 pixels.
Imported only where a model is logged or loaded: it imports MLflow, and loading it TensorFlow.

Output: a DataFrame with `prediction` (the class name, or the value for regression) and, for
classification, `prob_<class>` per class.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

from experiments.data.raw_inputs import RawInputs

KERAS_ARTIFACT = "keras_model"
INPUTS_ARTIFACT = "raw_inputs"
PREDICTION = "prediction"
PROBABILITY_PREFIX = "prob_"


class WinnerModel(PythonModel):  # type: ignore[misc]
    """Preprocessing + Keras network as one pyfunc model (artifacts: keras_model, raw_inputs)."""

    # `predict` takes a DataFrame (tables) or an array (images), which MLflow 3's type-hint
    # schemas cannot say: no hints on it, and no advice to add them; the logged signature
    # describes the input instead
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        import keras

        with open(context.artifacts[INPUTS_ARTIFACT], "rb") as handle:
            self.inputs: RawInputs = pickle.load(handle)  # noqa: S301 - our own artifact
        self.network = keras.saving.load_model(context.artifacts[KERAS_ARTIFACT], compile=False)

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Predictions for raw rows (a DataFrame) or raw images ((n, 28, 28) pixels).

        Raises:
            InputError: a missing or unknown column, text in a numeric column, a wrong shape.
        """
        return predictions(self.inputs, self.network, model_input)

    def check(self, model_input: Any) -> Any:
        """The input checked as `predict` checks it (InputError otherwise), before MLflow's own
        schema enforcement can reject it with a longer message."""
        return self.inputs.check(model_input)


def predictions(inputs: RawInputs, network: Any, raw: Any) -> Any:
    """The network's outputs on `raw` as a DataFrame of predictions and class probabilities."""
    import pandas as pd

    x = inputs.transform(raw)
    out = np.asarray(network.predict(x, verbose=0), dtype=np.float64)
    if inputs.class_names is None:
        return pd.DataFrame({PREDICTION: out.reshape(-1)})
    if inputs.task == "binary":
        positive = out.reshape(-1)
        probs = np.stack([1.0 - positive, positive], axis=1)
        labels = (positive >= 0.5).astype(np.int64)  # as TaskKind.predict_labels
    else:
        probs = out
        labels = np.argmax(out, axis=1)
    names = list(inputs.class_names)
    frame = pd.DataFrame({PREDICTION: [names[i] for i in labels]})
    for index, name in enumerate(names):
        frame[f"{PROBABILITY_PREFIX}{name}"] = probs[:, index]
    return frame

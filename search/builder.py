"""Model builder: a TrialParams becomes a compiled `keras.Sequential` (backend-agnostic)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.tasks import TaskKind
from search.params import TrialParams

if TYPE_CHECKING:
    import keras


def build_model(
    params: TrialParams, n_features: int, task: TaskKind, n_classes: int | None
) -> keras.Sequential:
    """Input -> hidden Dense layers (with Dropout when > 0) -> the task's head.

    Example:
        >>> from experiments.tasks import task_kind
        >>> p = TrialParams(2, (8, 4), "relu", "adam", 1e-3, 32, 0.0)
        >>> build_model(p, 12, task_kind("regression"), None).count_params()
        145
    """
    import keras

    layers: list[keras.layers.Layer] = [keras.Input(shape=(n_features,))]
    for i, units in enumerate(params.units):
        layers.append(keras.layers.Dense(units, activation=params.activation, name=f"hidden_{i}"))
        if params.dropout > 0:
            layers.append(keras.layers.Dropout(params.dropout, name=f"dropout_{i}"))
    layers.append(
        keras.layers.Dense(
            task.output_units(n_classes), activation=task.output_activation, name="output"
        )
    )
    return keras.Sequential(layers, name="candidate")


def make_optimizer(params: TrialParams) -> keras.optimizers.Optimizer:
    """The sampled optimizer at the sampled learning rate ("momentum" is SGD with momentum)."""
    import keras

    lr = params.learning_rate
    if params.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr)
    if params.optimizer == "momentum":
        return keras.optimizers.SGD(learning_rate=lr, momentum=params.momentum or 0.9)
    if params.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if params.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if params.optimizer == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=lr)
    raise ValueError(f"unknown optimizer {params.optimizer!r}")


def effective_steps_per_execution(steps: int, backend: str) -> int:
    """The `steps_per_execution` a compile really uses: Keras's PyTorch trainer runs one step per
    call only (it raises otherwise), so there it is 1. Trials record this one.

    Example:
        >>> effective_steps_per_execution(16, "jax"), effective_steps_per_execution(16, "torch")
        (16, 1)
    """
    return 1 if backend == "torch" else steps


def compile_model(
    model: keras.Model, params: TrialParams, task: TaskKind, steps_per_execution: int = 1
) -> None:
    """Compile with the task's loss and its per-epoch metric (read back by name)."""
    import keras

    model.compile(
        optimizer=make_optimizer(params),
        loss=task.loss,
        metrics=[task.curve_metric],
        steps_per_execution=effective_steps_per_execution(steps_per_execution,
                                                          keras.backend.backend()),
    )

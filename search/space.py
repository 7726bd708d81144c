"""The search space: a function of a trial that returns a TrialParams.

Conditional parameters come naturally: `units_2` exists only when `n_layers >= 3`, and
`momentum` only when the optimizer is SGD with momentum.

Example:
    >>> import optuna
    >>> from experiments.spec import SpaceSpec
    >>> trial = optuna.trial.FixedTrial({"n_layers": 1, "units_0": 16, "activation": "relu",
    ...     "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32, "dropout": 0.0})
    >>> sample_params(trial, SpaceSpec()).units
    (16,)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiments.params import Choice, Fixed, Param, Range
from search.params import TrialParams

if TYPE_CHECKING:
    import optuna

    from experiments.spec import SpaceSpec


def sample_params(trial: optuna.trial.BaseTrial, space: SpaceSpec) -> TrialParams:
    """Ask the trial for every hyperparameter the space defines."""
    n_layers = int(_suggest(trial, "n_layers", space.n_layers, integer=True))
    units = tuple(
        int(_suggest(trial, f"units_{i}", space.units, integer=True)) for i in range(n_layers)
    )
    optimizer = str(_suggest(trial, "optimizer", space.optimizer))
    momentum = (
        float(_suggest(trial, "momentum", space.momentum)) if optimizer == "momentum" else None
    )
    return TrialParams(
        n_layers=n_layers,
        units=units,
        activation=str(_suggest(trial, "activation", space.activation)),
        optimizer=optimizer,
        learning_rate=float(_suggest(trial, "learning_rate", space.learning_rate)),
        batch_size=int(_suggest(trial, "batch_size", space.batch_size, integer=True)),
        dropout=float(_suggest(trial, "dropout", space.dropout)),
        momentum=momentum,
    )


def _suggest(trial: optuna.trial.BaseTrial, name: str, param: Param, integer: bool = False) -> Any:
    # A fixed value is not suggested: it is no search dimension, and the samplers need not see it.
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.choices))
    if isinstance(param, Range):
        if integer:
            step = int(param.step) if param.step else 1
            return trial.suggest_int(
                name, int(param.low), int(param.high), step=step, log=param.log
            )
        return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)
    raise TypeError(f"unsupported parameter {param!r} for {name}")

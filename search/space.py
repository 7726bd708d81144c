"""The search space: a function of a trial that returns a TrialParams.

Conditional parameters come naturally: `units_2` exists only when `n_layers >= 3`, and
`momentum` only when the optimizer is SGD with momentum. A learning rate given per optimizer
(`space.learning_rate: {sgd: {..}, default: {..}}`) is one Optuna parameter per optimizer,
`learning_rate_sgd`, `learning_rate_adam`, ...: TPE then models each optimizer's good rates
apart instead of mixing SGD's 1e-1 with Adam's 1e-3 in one density. The TrialParams (hence
MLflow, reruns, reports) still holds one comparable `learning_rate`.

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

from experiments.params import Choice, Fixed, Param, PerChoice, Range
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
        learning_rate=float(_suggest(trial, *learning_rate_param(space, optimizer))),
        batch_size=int(_suggest(trial, "batch_size", space.batch_size, integer=True)),
        dropout=float(_suggest(trial, "dropout", space.dropout)),
        momentum=momentum,
    )


def learning_rate_param(space: SpaceSpec, optimizer: str) -> tuple[str, Param]:
    """The Optuna name and the range of the learning rate for `optimizer`.

    Example:
        >>> from experiments.spec import SpaceSpec
        >>> learning_rate_param(SpaceSpec(), "sgd")[0]
        'learning_rate'
    """
    rate = space.learning_rate
    if isinstance(rate, PerChoice):
        return f"learning_rate_{optimizer}", rate.param_for(optimizer)
    return "learning_rate", rate


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

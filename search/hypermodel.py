"""KerasTuner's view of a search space: a spec's `SpaceSpec` as a `keras_tuner.HyperModel`.

The space is declared with the same names, ranges, choices, steps and log scales as
`search.space.sample_params` asks Optuna for, and with the same conditions: `units_i` is active
only when `n_layers > i`, `momentum` only for the "momentum" optimizer, a per-optimizer
learning rate `learning_rate_<optimizer>` only for its optimizer (KerasTuner conditions, so its
oracles neither sample nor hash inactive values).

A KerasTuner trial's values become a `TrialParams` by replaying them through `sample_params`
with an `optuna.trial.FixedTrial`: one function decides what a value means for both engines, the
models come from `search.builder` in both, and the replay also yields the Optuna distributions
that the trial's record needs.

Example:
    >>> import keras_tuner
    >>> from experiments.spec import SpaceSpec
    >>> hp = keras_tuner.HyperParameters()
    >>> declare_space(hp, SpaceSpec())
    >>> [p.name for p in hp.space][:4]
    ['n_layers', 'units_0', 'units_1', 'units_2']
    >>> replay(hp.values, SpaceSpec())[0].units  # the defaults: one layer of 8 units
    (8,)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import keras_tuner
import optuna

from experiments.params import Choice, Fixed, Param, Range
from search.builder import build_model, compile_model
from search.params import TrialParams
from search.space import learning_rate_param, sample_params

if TYPE_CHECKING:
    import keras

    from experiments.spec import SpaceSpec
    from experiments.tasks import TaskKind

Kind = Literal["int", "float", "str"]
Condition = tuple[str, list[Any]]  # (parent name, the parent values that activate it)


def declare_space(hp: keras_tuner.HyperParameters, space: SpaceSpec) -> None:
    """Register every hyperparameter of the space on `hp`, conditional ones included.

    Every `units_i` a network could have is declared (KerasTuner discovers its space by building,
    so a layer that only exists for some `n_layers` must still be declared); `hp.values` then
    holds the active values only.
    """
    _declare(hp, "n_layers", space.n_layers, "int")
    layer_counts = sorted({int(v) for v in _values(space.n_layers)})
    for i in range(max(layer_counts)):
        deep_enough = [n for n in layer_counts if n > i]
        deep: Condition | None = None
        if len(deep_enough) < len(layer_counts):
            deep = ("n_layers", list(deep_enough))
        _declare(hp, f"units_{i}", space.units, "int", deep)
    _declare(hp, "activation", space.activation, "str")
    _declare(hp, "optimizer", space.optimizer, "str")
    optimizers = {str(v) for v in space.optimizer.values()}
    if "momentum" in optimizers:
        only: Condition | None = None if optimizers == {"momentum"} else ("optimizer", ["momentum"])
        _declare(hp, "momentum", space.momentum, "float", only)
    for optimizer in dict.fromkeys(str(v) for v in space.optimizer.values()):  # spec order
        name, rate = learning_rate_param(space, optimizer)
        if name == "learning_rate":  # one range for every optimizer: one parameter
            _declare(hp, name, rate, "float")
            break
        own: Condition | None = None if len(optimizers) == 1 else ("optimizer", [optimizer])
        _declare(hp, name, rate, "float", own)
    _declare(hp, "batch_size", space.batch_size, "int")
    _declare(hp, "dropout", space.dropout, "float")


def replay(
    values: dict[str, Any], space: SpaceSpec
) -> tuple[TrialParams, optuna.trial.FixedTrial]:
    """The TrialParams of a KerasTuner trial, and the FixedTrial that holds its Optuna params and
    distributions (searched dimensions only, as in the Optuna engine).

    Extra keys such as Hyperband's `tuner/epochs` are ignored.

    Raises:
        ValueError: a value is not one of the space's choices.
        KeyError: an active value is missing (e.g. `units_2` with 3 layers).
    """
    trial = optuna.trial.FixedTrial(_within_ranges(values, space))
    return sample_params(trial, space), trial


def _within_ranges(values: dict[str, Any], space: SpaceSpec) -> dict[str, Any]:
    """KerasTuner's log-scaled Int maps a probability of 1.0 (which its Bayesian oracle does
    propose) to high + 1; the model is built, and recorded, with the range's top instead."""
    out = dict(values)
    for name, value in values.items():
        param = space.units if name.startswith("units_") else getattr(space, name, None)
        if isinstance(param, Range) and isinstance(value, int) and not isinstance(value, bool):
            out[name] = min(max(value, int(param.low)), int(param.high))
    return out


class SpaceHyperModel(keras_tuner.HyperModel):
    """The spec's space as a HyperModel; `build` returns the model the Optuna engine would build.

    Example:
        >>> from experiments.spec import SpaceSpec
        >>> from experiments.tasks import task_kind
        >>> hypermodel = SpaceHyperModel(SpaceSpec(), task_kind("binary"), 2, None)
        >>> hypermodel.build(keras_tuner.HyperParameters()).count_params()  # Dense(8) + Dense(1)
        33
    """

    def __init__(
        self,
        space: SpaceSpec,
        task: TaskKind,
        n_features: int,
        n_classes: int | None,
        steps_per_execution: int = 1,
    ) -> None:
        super().__init__(name="fitscope_space")
        self.space = space
        self.task = task
        self.n_features = n_features
        self.n_classes = n_classes
        self.steps_per_execution = steps_per_execution

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        declare_space(hp, self.space)

    def params(self, hp: keras_tuner.HyperParameters) -> TrialParams:
        """The TrialParams of the active values in `hp`."""
        declare_space(hp, self.space)  # registers nothing new once declared; fills defaults
        return replay(hp.values, self.space)[0]

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        params = self.params(hp)
        model = build_model(params, self.n_features, self.task, self.n_classes)
        compile_model(model, params, self.task, self.steps_per_execution)
        return model


def _declare(
    hp: keras_tuner.HyperParameters,
    name: str,
    param: Param,
    kind: Kind,
    condition: Condition | None = None,
) -> Any:
    scope: dict[str, Any] = {}
    if condition is not None:
        scope = {"parent_name": condition[0], "parent_values": condition[1]}
    if isinstance(param, Fixed):
        return hp.Fixed(name, _cast(param.value, kind), **scope)
    if isinstance(param, Choice):
        # KerasTuner wants one type per choice: YAML's [0, 0.2] becomes [0.0, 0.2]
        return hp.Choice(name, [_cast(v, kind) for v in param.choices], **scope)
    if isinstance(param, Range):
        sampling = "log" if param.log else "linear"
        if kind == "int":
            # step None with log: any integer, log-uniform (Optuna's suggest_int(log=True))
            step = int(param.step) if param.step else (None if param.log else 1)
            return hp.Int(name, int(param.low), int(param.high), step=step, sampling=sampling,
                          **scope)
        return hp.Float(name, float(param.low), float(param.high), step=param.step,
                        sampling=sampling, **scope)
    raise TypeError(f"unsupported parameter {param!r} for {name}")


def _values(param: Param) -> tuple[Any, ...]:
    if isinstance(param, Range):  # n_layers: every integer the range allows
        step = int(param.step) if param.step else 1
        return tuple(range(int(param.low), int(param.high) + 1, step))
    return param.values()


def _cast(value: Any, kind: Kind) -> Any:
    return {"int": int, "float": float, "str": str}[kind](value)

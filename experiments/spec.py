"""Experiment specs: one YAML file per experiment, validated into frozen, typed objects.

An experiment declares only what differs from the defaults below, so a new CSV experiment
needs no code. A bad spec fails at load time with the field's name.

Example:
    >>> from experiments.registry import load_spec
    >>> spec = load_spec("iris")
    >>> spec.task, spec.search.sampler
    ('multiclass', 'tpe')
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from common.errors import SpecError
from common.text import shown
from experiments.params import (
    DEFAULT,
    Choice,
    Fixed,
    Param,
    PerChoice,
    Range,
    as_param,
    as_per_choice,
    is_per_choice,
)
from experiments.thresholds import FitThresholds

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "selu", "gelu", "swish", "linear")
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adagrad")
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

SpaceParam = Annotated[Param, BeforeValidator(as_param)]


def _as_learning_rate(raw: Any) -> Any:
    """`{low, high, log}` (one range for every optimizer) or `{sgd: {..}, default: {..}}`."""
    if is_per_choice(raw):
        return as_per_choice(raw, "space.learning_rate", per="optimizer")
    return as_param(raw)


# one range, or one per optimizer: SGD and Adam want learning rates 1-2 decades apart
LearningRate = Annotated[Param | PerChoice, BeforeValidator(_as_learning_rate)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSpec(_Strict):
    """Where the data comes from and how it is split and scaled (scalers fit on train only)."""

    source: Literal["sklearn", "csv", "idx", "inline", "generated"]
    dataset: str | None = None  # sklearn: iris | generated: xor | idx: fashion-mnist
    path: str | None = None  # csv: a file name (looked up in the data dirs), a path or an https URL
    sha256: str | None = None  # csv: expected checksum of the file
    target: str | None = None  # csv / inline: the target column
    drop: tuple[str, ...] = ()  # columns that carry no signal (ids, names)
    categorical: tuple[str, ...] = ()  # one-hot encoded; every other feature column is numeric
    sep: str = ","  # csv: pandas separator ("\\s+" for whitespace)
    skiprows: int = Field(0, ge=0)  # csv: comment lines before the data
    columns: tuple[str, ...] = ()  # csv without a header row / inline: column names
    rows: tuple[tuple[float, ...], ...] = ()  # inline: the data itself
    test_size: float = Field(
        0.2, gt=0, lt=1
    )  # ignored where the dataset has an official test split
    val_size: float = Field(0.2, gt=0, lt=1)  # carved from the training part
    split: Literal["holdout", "none"] = "holdout"  # none: train = val = test (XOR's 4 rows)
    split_seed: int = 42  # the course's random_state; fixed so every trial sees the same split
    scale: Literal["minmax", "standard", "divide255", "none"] = "standard"

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:  # pandas would rename or merge them: name the slip instead
            raise ValueError(f"column names must be unique; repeated: {shown(repeated)}")
        return value

    @model_validator(mode="after")
    def _source_fields(self) -> DataSpec:
        needs = {
            "sklearn": ("dataset",),
            "generated": ("dataset",),
            "idx": ("dataset",),
            "csv": ("path", "target"),
            "inline": ("rows", "columns", "target"),
        }[self.source]
        for field in needs:
            if not getattr(self, field):
                raise ValueError(f"source {self.source!r} needs the field {field!r}")
        return self


class SpaceSpec(_Strict):
    """The search space: which dense networks are candidates."""

    n_layers: SpaceParam = Range(low=1, high=3)
    units: SpaceParam = Range(low=8, high=128, log=True)  # sampled per layer
    activation: SpaceParam = Choice(choices=("relu", "tanh", "elu"))
    optimizer: SpaceParam = Choice(choices=OPTIMIZERS)
    learning_rate: LearningRate = Range(low=1e-4, high=1e-1, log=True)  # always a log scale
    momentum: SpaceParam = Range(low=0.5, high=0.99)  # sampled only for optimizer momentum
    batch_size: SpaceParam = Choice(choices=(16, 32, 64))
    dropout: SpaceParam = Range(low=0.0, high=0.3)

    @model_validator(mode="after")
    def _domains(self) -> SpaceSpec:
        _check_numbers(
            "n_layers", self.n_layers, lambda v: v >= 1 and float(v).is_integer(), "an integer >= 1"
        )
        for field in ("n_layers", "units", "batch_size"):  # suggest_int needs a whole step
            step = getattr(getattr(self, field), "step", None)
            if step is not None and not float(step).is_integer():
                raise ValueError(f"space.{field}: expected a whole-number step, got {step:g}")
        _check_numbers(
            "units", self.units, lambda v: v >= 1 and float(v).is_integer(), "an integer >= 1"
        )
        _check_numbers(
            "batch_size",
            self.batch_size,
            lambda v: v >= 1 and float(v).is_integer(),
            "an integer >= 1",
        )
        _check_numbers("momentum", self.momentum, lambda v: 0 <= v < 1, "a number in [0, 1)")
        _check_numbers("dropout", self.dropout, lambda v: 0 <= v < 1, "a number in [0, 1)")
        _check_names("activation", self.activation, ACTIVATIONS)
        _check_names("optimizer", self.optimizer, OPTIMIZERS)
        _check_learning_rate(self.learning_rate, self.optimizer)
        return self


class TrainSpec(_Strict):
    """How one candidate is fitted."""

    max_epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=1)  # EarlyStopping on val_loss, best weights restored
    deterministic: bool = True  # op determinism: same seed, same curves; off trades that for speed
    # Keras' per-step Python overhead dominates small dense nets on CPU: running 16 steps per call
    # cut a Fashion-MNIST epoch from 2.6 s to 1.5 s at batch 128 (bench/peak.py), same maths
    # at 2**31 Keras' int32 step counter wraps and fit() silently trains nothing (no val_loss);
    # beyond an epoch's steps a larger value buys nothing
    steps_per_execution: int = Field(16, ge=1, le=100_000)
    # how batches reach Keras on TensorFlow (search/inputs.py): `dataset` cut an XOR epoch from
    # 197 ms to 54 ms, iris 3.1x; `arrays` is how runs recorded before it were trained
    input_pipeline: Literal["dataset", "arrays"] = "dataset"


def _as_objective(value: Any) -> Any:
    """`n_params` or `{n_params: maximize}` -> `{name: n_params, direction: maximize}`."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and len(value) == 1 and "name" not in value:
        ((name, direction),) = value.items()
        return {"name": name, "direction": direction}
    return value


class ObjectiveSpec(_Strict):
    """One objective of a multi-objective study."""

    # what a multi-objective study can trade val_loss against: each a number a fit measures
    name: Literal["val_loss", "n_params", "epochs_to_best", "train_seconds"]
    direction: Literal["minimize", "maximize"] = "minimize"


class SearchSpec(_Strict):
    """How the study proposes candidates.

    `objectives` (two or more, val_loss first) makes the study multi-objective: Optuna keeps the
    Pareto front of trials no other trial beats on every objective (docs/pareto.md).
    """

    trials: int = Field(30, ge=1)
    timeout: float | None = Field(None, gt=0)  # seconds for one invocation; None = no limit
    objective: Literal["val_loss"] = "val_loss"  # minimised, best epoch's value
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    seed: int = Field(42, ge=0, lt=2**32)  # NumPy and TensorFlow take unsigned 32-bit seeds
    startup_trials: int = Field(5, ge=0)  # random trials before TPE models the space
    warmup_epochs: int = Field(3, ge=0)  # no pruning before this many epochs: early curves cross
    # () = one objective, val_loss; e.g. [val_loss, n_params] trades accuracy against size
    objectives: tuple[Annotated[ObjectiveSpec, BeforeValidator(_as_objective)], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _no_pruning_default(cls, data: Any) -> Any:
        # Optuna cannot prune a multi-objective study (Trial.report takes one value): such a
        # study prunes nothing unless the spec asks otherwise, which _objectives refuses
        objectives = data.get("objectives") if isinstance(data, dict) else None
        if isinstance(objectives, (list, tuple)) and len(objectives) > 1 and "pruner" not in data:
            return {**data, "pruner": "none"}
        return data

    @model_validator(mode="after")
    def _objectives(self) -> SearchSpec:
        if not self.objectives:
            return self
        names = [o.name for o in self.objectives]
        if len(names) < 2:
            raise ValueError("search.objectives: list two or more (val_loss first); one "
                             "objective is the default, val_loss")
        if self.objectives[0] != ObjectiveSpec(name="val_loss"):
            raise ValueError("search.objectives: the first objective must be val_loss, "
                             "minimized: it chooses the best trial")
        if len(set(names)) < len(names):
            raise ValueError(f"search.objectives: each objective once; got {', '.join(names)}")
        if self.pruner != "none":
            raise ValueError(f"search.pruner: {self.pruner} cannot prune a multi-objective "
                             "study (Optuna's pruners judge one value); set pruner: none")
        return self

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The study's objectives in order: ("val_loss",) for a single-objective study."""
        return tuple(o.name for o in self.objectives) or (self.objective,)

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        """Optuna's `directions`, one per objective."""
        return [o.direction for o in self.objectives] or ["minimize"]


class ExperimentSpec(_Strict):
    """One experiment: what is learned, which candidates, how they are fitted and searched."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    task: Literal["regression", "binary", "multiclass"]
    data: DataSpec
    space: SpaceSpec = Field(default_factory=SpaceSpec)
    train: TrainSpec = Field(default_factory=lambda: TrainSpec())
    search: SearchSpec = Field(default_factory=lambda: SearchSpec())
    # fit-diagnosis thresholds (experiments/thresholds.py), e.g. {gap_ratio: 0.5}
    diagnosis: FitThresholds = Field(default_factory=FitThresholds)
    notes: str = ""  # what the course says about this data set

    @field_validator("description", "notes", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    def with_search(self, **changes: Any) -> ExperimentSpec:
        """Return a copy with some `search:` fields replaced (CLI overrides), re-validated."""
        given = {k: v for k, v in changes.items() if v is not None}
        try:
            search = SearchSpec(**(self.search.model_dump() | given))
        except ValidationError as exc:  # a command-line value out of range (--seed -1)
            error = exc.errors()[0]
            field = ".".join(map(str, error["loc"]))
            raise SpecError(f"--{field} {shown(error.get('input'))}: "
                            f"{str(error['msg']).lower()}") from None
        return self.model_copy(update={"search": search})

    def fingerprint(self) -> str:
        """Short hash of everything that defines the study (not the per-invocation budget)."""
        identity = self.model_dump(mode="json", exclude={"description", "notes"})
        # thresholds judge trials, they do not change them: new ones re-judge the same study.
        # ({} rather than dropping the key keeps the hashes, hence names, of existing studies.)
        identity["diagnosis"] = {}
        # how batches are fed, not what is learned: trials stay comparable, the name stays
        identity["train"].pop("input_pipeline")
        identity["search"].pop("trials")
        identity["search"].pop("timeout")
        if not identity["search"]["objectives"]:  # single-objective studies keep their names
            identity["search"].pop("objectives")
        blob = json.dumps(identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:8]


def _numbers(param: Param) -> tuple[Any, ...]:
    return param.values()


def _check_numbers(field: str, param: Param, ok: Any, expected: str) -> None:
    for value in _numbers(param):
        if isinstance(value, (list, tuple, dict, set)):  # never format a whole structure
            raise ValueError(f"space.{field}: expected {expected}, got a {type(value).__name__}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"space.{field}: expected {expected}, got {shown(value)}")
        if not ok(value):
            raise ValueError(f"space.{field}: expected {expected}, got {shown(value)}")


def _check_learning_rate(rate: Param | PerChoice, optimizer: Param) -> None:
    """Every rate > 0; a per-optimizer mapping names searched optimizers and covers them all."""
    if not isinstance(rate, PerChoice):
        _check_numbers("learning_rate", rate, lambda v: v > 0, "a number > 0")
        return
    searched = [str(v) for v in optimizer.values()]
    for key, param in rate.root.items():
        if key != DEFAULT and key not in OPTIMIZERS:
            raise ValueError(f"space.learning_rate: unknown optimizer {shown(key)}; expected "
                             f"one of {', '.join(OPTIMIZERS)} or {DEFAULT}")
        if key != DEFAULT and key not in searched:
            raise ValueError(f"space.learning_rate.{key}: {key} is not searched "
                             f"(space.optimizer: {', '.join(searched)})")
        _check_numbers(f"learning_rate.{key}", param, lambda v: v > 0, "a number > 0")
    uncovered = [name for name in searched if name not in rate.root]
    if uncovered and DEFAULT not in rate.root:
        raise ValueError(f"space.learning_rate: no range for optimizer(s) "
                         f"{', '.join(uncovered)}; name each one or add {DEFAULT}")


def _check_names(field: str, param: Param, allowed: tuple[str, ...]) -> None:
    if isinstance(param, Range):
        raise ValueError(f"space.{field}: expected a name or a list of names, not a range")
    for value in param.values():
        if not isinstance(value, str):
            kind = type(value).__name__
            got = f"a {kind}" if isinstance(value, (list, tuple, dict, set)) else shown(value)
            raise ValueError(f"space.{field}: expected a name, one of {', '.join(allowed)}; "
                             f"got {got}")
        if value not in allowed:
            raise ValueError(
                f"space.{field}: unknown {field} {shown(value)}; expected one of "
                f"{', '.join(allowed)}"
            )


__all__ = [
    "ACTIVATIONS",
    "OPTIMIZERS",
    "Choice",
    "DataSpec",
    "ExperimentSpec",
    "Fixed",
    "ObjectiveSpec",
    "PerChoice",
    "Range",
    "SearchSpec",
    "SpaceSpec",
    "TrainSpec",
]

"""The trial record: what a trial stores in the Optuna storage and how it is read back.

This module is the one owner of that contract. Both engines write a trial's attrs through it
(`settings_attrs`, `fit_attrs`), reruns build their record with `record_from_fit`, and
everything that reads a trial (MLflow runs, `fitscope sync`, reports, the worker supervisor)
goes through `record_from_trial` and the attr names below. The objective keeps everything about
a trial in its user attrs (params, seed, per-epoch curves, test metrics, failure reason), so the
Optuna storage alone can rebuild any MLflow run later, also for trials that were pruned, failed
or interrupted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from common.errors import TrackingError
from search.builder import effective_steps_per_execution
from search.inputs import effective_pipeline
from search.objectives import best_value

if TYPE_CHECKING:
    from experiments.spec import ExperimentSpec
    from search.training import FitResult

# --- a trial's user attrs ----------------------------------------------------------------------
WORKER = "worker"  # host:pid of the process that ran it, written first (see Objective)
PARAMS = "params"  # every sampled and fixed hyperparameter, flat
SETTINGS = "settings"  # seed, epochs, patience, backend versions: what else shaped the fit
HISTORY = "history"  # per-epoch curves, saved while it trains
FAIL_REASON = "fail_reason"
RETRY_OF = "retry_of"  # set on a re-queued trial of a dead worker: it is retried only once
MODEL_PATH = "model_path"  # the saved model of a trial that beat the study's best
EXTRA_PREFIX = "x_"  # engine-specific extras carried into the MLflow run as they are

# --- a study's user attrs ----------------------------------------------------------------------
EXPERIMENT = "experiment"
SPEC = "spec"  # the resolved spec as JSON: reports and reruns rebuild the experiment from it
SEED = "seed"
ENGINE = "engine"  # KERASTUNER on a KerasTuner record study; absent: the Optuna engine
KERASTUNER = "kerastuner"
TUNER = "tuner"
ENGINE_LABELS = "engine_labels"  # how the study searched, as MLflow tags/params of the parent
CLASS_NAMES = "class_names"  # confusion-matrix labels, for a `sync` that loads no data
BASELINE_LOSS = "baseline_loss"  # the trivial predictor's loss, for the fit diagnosis
DATA_SHA256 = "data_sha256"
MLFLOW_PARENT = "mlflow_parent_run_id"
# the parent's intended status, kept in Optuna: if MLflow is down when a study ends, `sync` can
# still close the parent truthfully ("RUNNING" while a process is at it)
MLFLOW_PARENT_STATUS = "mlflow_parent_status"


def check_experiment(study: optuna.Study, experiment: str) -> None:
    """Refuse a study that records another experiment's trials: adding to it would mix
    incomparable trials and move its MLflow parent run into this experiment.

    Raises:
        TrackingError: the study's `experiment` attr names another experiment.
    """
    owner = study.user_attrs.get(EXPERIMENT)
    if owner is not None and owner != experiment:
        raise TrackingError(
            f"study {study.study_name} belongs to experiment {owner!r}, not {experiment!r}: "
            "choose another --study"
        )


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL | RUNNING | WAITING
    params: dict[str, Any]  # every sampled and fixed hyperparameter, flat
    settings: dict[str, Any]  # max_epochs, patience, seed, keras_backend, deterministic, ...
    history: dict[str, list[float]]
    best_epoch: int | None
    best_val_loss: float | None
    epochs_trained: int
    n_params: int | None
    train_seconds: float | None
    test: dict[str, float]
    fail_reason: str | None
    model_summary: str | None = None
    confusion_matrix: list[list[int]] | None = None
    classification_report: str | None = None
    model_path: str | None = None
    duration_seconds: float | None = None
    worker: str | None = None  # host:pid of the process that ran it
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int | None:
        value = self.settings.get("seed")
        return None if value is None else int(value)


def settings_attrs(
    spec: ExperimentSpec, seed: int, study_seed: int, backend: dict[str, str]
) -> dict[str, Any]:
    """A trial's `settings`: everything beside its params that shaped the fit."""
    train = spec.train
    name = backend.get("keras_backend", "tensorflow")
    return {
        "seed": seed,
        "max_epochs": train.max_epochs,
        "patience": train.patience,
        "deterministic": train.deterministic,
        # the ones the fit used: 1 step per call on PyTorch, the arrays off TensorFlow
        "steps_per_execution": effective_steps_per_execution(train.steps_per_execution, name),
        "input_pipeline": effective_pipeline(train.input_pipeline, name),
        "study_seed": study_seed,
        "split_seed": spec.data.split_seed,  # train/val/test split: same for every trial
        **backend,
    }


def fit_attrs(result: FitResult, model_path: str | None = None) -> dict[str, Any]:
    """The user attrs a fitted trial adds (its curves are saved apart, while it trains)."""
    attrs = {
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "n_params": result.n_params,
        "train_seconds": result.train_seconds,
        "test": result.test,
        "model_summary": result.model_summary,
        "confusion_matrix": result.confusion_matrix,
        "classification_report": result.classification_report,
        MODEL_PATH: model_path,
    }
    return {key: value for key, value in attrs.items() if value is not None}


def record_from_fit(
    number: int,
    params: dict[str, Any],
    settings: dict[str, Any],
    history: dict[str, list[float]],
    result: FitResult | None,
    fail_reason: str | None = None,
    seconds: float | None = None,
) -> TrialRecord:
    """The record of a fit that never went through a study (a rerun): COMPLETE with its result,
    else FAIL with the curves it reached before it failed."""
    if result is not None:
        return _record(number, "COMPLETE", {
            PARAMS: params, SETTINGS: settings, HISTORY: history, **fit_attrs(result)})
    return _record(number, "FAIL", {
        PARAMS: params, SETTINGS: settings, HISTORY: history, "train_seconds": seconds,
        FAIL_REASON: fail_reason})


def record_from_trial(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """Rebuild the record of one trial from its user attrs and Optuna's own fields."""
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    intermediate = [v for _, v in sorted(trial.intermediate_values.items())]
    return _record(
        trial.number,
        trial.state.name,
        trial.user_attrs,
        default_params=trial.params,
        default_val=intermediate,
        default_fail_reason=_optuna_fail_reason(trial),
        duration=duration,
    )


def is_best_so_far(study: optuna.Study, value: float) -> bool:
    """Whether the val loss `value` beats every completed trial of the study (only those trials
    save their model: the parent run logs the best, on a multi-objective study too)."""
    best = best_value(study)
    return best is None or value < best


def _record(
    number: int,
    state: str,
    attrs: dict[str, Any],
    default_params: dict[str, Any] | None = None,
    default_val: list[float] | None = None,
    default_fail_reason: str | None = None,
    duration: float | None = None,
) -> TrialRecord:
    history = {k: list(v) for k, v in attrs.get(HISTORY, {}).items()}
    val = history.get("val_loss") or list(default_val or [])
    finite = [(v, i) for i, v in enumerate(val) if isinstance(v, (int, float)) and math.isfinite(v)]
    best_val, best_epoch = min(finite) if finite else (None, None)
    return TrialRecord(
        number=number,
        state=state,
        params=dict(attrs.get(PARAMS, default_params or {})),
        settings=dict(attrs.get(SETTINGS, {})),
        history=history,
        best_epoch=attrs.get("best_epoch", best_epoch),
        best_val_loss=attrs.get("best_val_loss", best_val),
        epochs_trained=len(val),
        n_params=attrs.get("n_params"),
        train_seconds=attrs.get("train_seconds"),
        test=dict(attrs.get("test", {})),
        fail_reason=attrs.get(FAIL_REASON) or default_fail_reason,
        model_summary=attrs.get("model_summary"),
        confusion_matrix=attrs.get("confusion_matrix"),
        classification_report=attrs.get("classification_report"),
        model_path=attrs.get(MODEL_PATH),
        duration_seconds=duration,
        worker=attrs.get(WORKER),
        extras={k: v for k, v in attrs.items() if k.startswith(EXTRA_PREFIX)},
    )


def _optuna_fail_reason(trial: optuna.trial.FrozenTrial) -> str | None:
    # Optuna's own retry/stale-trial machinery records why it failed a trial in system attrs.
    if trial.state != optuna.trial.TrialState.FAIL:
        return None
    reason = trial.system_attrs.get("fail_reason")
    return str(reason) if reason else "failed (no reason recorded: the process died)"

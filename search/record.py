"""A finished trial's full record, read back from the Optuna storage.

The objective keeps everything about a trial in its user attrs (params, seed, per-epoch curves,
test metrics, failure reason), so the Optuna storage alone can rebuild any MLflow run later
(`fitscope sync`), also for trials that were pruned, failed or interrupted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna


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


def record_from_trial(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """Rebuild the record of one trial from its user attrs and Optuna's own fields."""
    attrs = trial.user_attrs
    history = {k: list(v) for k, v in attrs.get("history", {}).items()}
    val = history.get("val_loss") or [v for _, v in sorted(trial.intermediate_values.items())]
    finite = [(v, i) for i, v in enumerate(val) if isinstance(v, (int, float)) and math.isfinite(v)]
    best_val, best_epoch = min(finite) if finite else (None, None)
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        params=dict(attrs.get("params", trial.params)),
        settings=dict(attrs.get("settings", {})),
        history=history,
        best_epoch=attrs.get("best_epoch", best_epoch),
        best_val_loss=attrs.get("best_val_loss", best_val),
        epochs_trained=len(val),
        n_params=attrs.get("n_params"),
        train_seconds=attrs.get("train_seconds"),
        test=dict(attrs.get("test", {})),
        fail_reason=attrs.get("fail_reason") or _optuna_fail_reason(trial),
        model_summary=attrs.get("model_summary"),
        confusion_matrix=attrs.get("confusion_matrix"),
        classification_report=attrs.get("classification_report"),
        model_path=attrs.get("model_path"),
        duration_seconds=duration,
        worker=attrs.get("worker"),
        extras={k: v for k, v in attrs.items() if k.startswith("x_")},
    )


def _optuna_fail_reason(trial: optuna.trial.FrozenTrial) -> str | None:
    # Optuna's own retry/stale-trial machinery records why it failed a trial in system attrs.
    if trial.state != optuna.trial.TrialState.FAIL:
        return None
    reason = trial.system_attrs.get("fail_reason")
    return str(reason) if reason else "failed (no reason recorded: the process died)"

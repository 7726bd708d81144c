"""Search engines side by side on one spec, seed and wall-clock budget (`fitscope compare`).

Each engine's numbers come from its study, where every trial's record is kept: trials by state,
epochs trained, the best trial (lowest best-epoch val_loss) with its val and test metric at that
epoch, and the engine's wall seconds. They are written as a Markdown table and as an MLflow run
tagged `fitscope.role=comparison`, under which both studies' parent runs are nested.

Example:
    >>> row = EngineResult("optuna", "iris-s42", "", 9, 2, 0, 240, 0.061, 0.967, 0.933, 4, "", 60.0)
    >>> row.finished
    11
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search.params import TrialParams
from search.record import record_from_trial
from tracking.trial_run import ROLE_TAG

if TYPE_CHECKING:
    import optuna

FINISHED = ("COMPLETE", "PRUNED", "FAIL")


@dataclass(frozen=True)
class EngineResult:
    """One engine's column of the comparison."""

    engine: str  # "optuna" or "kerastuner"
    study_name: str
    parent_run_id: str
    complete: int
    pruned: int
    failed: int
    epochs: int  # epochs trained by all its trials (a pruned trial's included)
    best_val_loss: float | None
    best_val_metric: float | None  # the task's curve metric at the best trial's best epoch
    best_test_metric: float | None
    best_trial: int | None
    best_params: str
    seconds: float

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    def metrics(self, val_metric: str, test_metric: str) -> dict[str, float]:
        """The numbers as MLflow metrics (missing ones left out)."""
        values = {
            "trials_finished": self.finished, "trials_complete": self.complete,
            "trials_pruned": self.pruned, "trials_failed": self.failed,
            "epochs_trained": self.epochs, "best_val_loss": self.best_val_loss,
            f"best_{val_metric}": self.best_val_metric,
            f"best_{test_metric}": self.best_test_metric, "wall_seconds": self.seconds,
        }
        return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def summarize_study(
    study: optuna.Study,
    engine: str,
    seconds: float,
    val_metric: str,
    test_metric: str,
    parent_run_id: str = "",
) -> EngineResult:
    """An engine's column, read from the records in its study.

    Args:
        val_metric: the per-epoch validation curve to report, e.g. "val_accuracy".
        test_metric: the test metric to report, e.g. "test_accuracy".
    """
    records = [record_from_trial(t) for t in study.get_trials(deepcopy=False)]
    records = [r for r in records if r.state in FINISHED]
    complete = [r for r in records if r.state == "COMPLETE" and r.best_val_loss is not None]
    best = min(complete, key=lambda r: float(r.best_val_loss or math.inf), default=None)
    val_value = None
    if best is not None and best.best_epoch is not None:
        curve = best.history.get(val_metric, [])
        val_value = curve[best.best_epoch] if best.best_epoch < len(curve) else None
    return EngineResult(
        engine=engine,
        study_name=study.study_name,
        parent_run_id=parent_run_id,
        complete=len(complete),
        pruned=sum(r.state == "PRUNED" for r in records),
        failed=sum(r.state == "FAIL" for r in records),
        epochs=sum(r.epochs_trained for r in records),
        best_val_loss=best.best_val_loss if best else None,
        best_val_metric=val_value,
        best_test_metric=best.test.get(test_metric) if best else None,
        best_trial=best.number if best else None,
        best_params=_short(best.params) if best else "",
        seconds=seconds,
    )


def markdown_table(
    results: Sequence[EngineResult],
    headers: Sequence[str],
    val_metric: str,
    test_metric: str,
) -> str:
    """The side-by-side table, one column per engine.

    Example:
        >>> row = EngineResult("kerastuner", "s", "", 3, 0, 1, 12, 0.5, 0.8, 0.7, 2, "", 9.96)
        >>> print(markdown_table([row], ["kerastuner"], "val_accuracy", "test_accuracy"))
        ... # doctest: +NORMALIZE_WHITESPACE
        | | kerastuner |
        |---|---:|
        | trials finished | 4 |
        | complete / pruned / failed | 3 / 0 / 1 |
        | epochs trained | 12 |
        | best val_loss | 0.5000 |
        | best trial's val_accuracy | 0.8000 |
        | best trial's test_accuracy | 0.7000 |
        | wall seconds | 10.0 |
        | best trial | #2 |
        | study | `s` |
    """
    rows: list[tuple[str, list[str]]] = [
        ("trials finished", [str(r.finished) for r in results]),
        ("complete / pruned / failed", [f"{r.complete} / {r.pruned} / {r.failed}"
                                        for r in results]),
        ("epochs trained", [str(r.epochs) for r in results]),
        ("best val_loss", [_fmt(r.best_val_loss) for r in results]),
        (f"best trial's {val_metric}", [_fmt(r.best_val_metric) for r in results]),
        (f"best trial's {test_metric}", [_fmt(r.best_test_metric) for r in results]),
        ("wall seconds", [f"{r.seconds:.1f}" for r in results]),
        ("best trial", [f"#{r.best_trial} {r.best_params}".strip() if r.best_trial is not None
                        else "-" for r in results]),
        ("study", [f"`{r.study_name}`" for r in results]),
    ]
    if any(r.parent_run_id for r in results):
        rows.append(("MLflow parent run", [f"`{r.parent_run_id}`" if r.parent_run_id else "-"
                                           for r in results]))
    lines = ["| | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join(lines)


class ComparisonRun:
    """The MLflow run of one comparison: opened first, so the engines' parents nest under it."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        run = self.client.create_run(
            experiment_id, run_name=run_name,
            tags={ROLE_TAG: "comparison", "fitscope.experiment": experiment, **tags},
        )
        self.run_id = str(run.info.run_id)
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def nest(self, run_id: str) -> None:
        """Show an engine's study parent run under this one in the MLflow UI."""
        self.client.set_tag(run_id, "mlflow.parentRunId", self.run_id)

    def finish(
        self,
        results: Sequence[EngineResult],
        val_metric: str,
        test_metric: str,
        report: str | None,
        status: str = "FINISHED",
    ) -> None:
        """Log every engine's numbers (`<engine>_<metric>`), the report file, and close."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        try:
            metrics = [Metric(f"{r.engine}_{name}", value, now, 0) for r in results
                       for name, value in r.metrics(val_metric, test_metric).items()]
            tags = [RunTag(f"{r.engine}_{key}", value) for r in results
                    for key, value in (("study", r.study_name), ("parent_run_id", r.parent_run_id))
                    if value]
            self.client.log_batch(self.run_id, metrics=metrics, tags=tags)
            if report:
                self.client.log_artifact(self.run_id, report)
        finally:
            self.client.set_terminated(self.run_id, status)


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _short(params: dict[str, Any]) -> str:
    try:
        return TrialParams.from_flat(params).short()
    except (KeyError, ValueError):
        return ""

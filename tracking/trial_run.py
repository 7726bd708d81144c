"""Write one trial's MLflow child run from its record: params, per-epoch curves, final metrics,
diagnosis, artifacts, and a terminal status that tells the truth.

The same function serves live tracking, `fitscope sync` and the worker supervisor, so a run
looks the same however it was written.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.diagnosis import Diagnosis
from reporting import plots
from search.record import TrialRecord

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# Optuna state -> MLflow run status: a pruned trial was stopped on purpose (KILLED).
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
ROLE_TAG = "fitscope.role"
STUDY_TAG = "fitscope.study"


def log_trial_run(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    study_name: str,
    record: TrialRecord,
    task_metric: str,
    class_names: Sequence[str] | None = None,
    diagnosis: Diagnosis | None = None,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
    figures: Any = plots,
) -> str:
    """Create the child run of one finished trial and close it with its true status.

    `tags` are added to (and may override) the run's own tags: the environment fingerprint,
    or `fitscope.role=rerun` for `fitscope rerun`. `figures` draws the plots: reporting.plots,
    or a live study's reporting.plot_process.PlotProcess.
    """
    from mlflow.entities import Metric, Param, RunTag

    status = RUN_STATUS.get(record.state, "FAILED")
    own = {
        "mlflow.parentRunId": parent_run_id,
        ROLE_TAG: "trial",
        STUDY_TAG: study_name,
        "trial_number": str(record.number),
        "state": record.state,
    }
    if record.fail_reason:
        own["fail_reason"] = record.fail_reason[:5000]
    if diagnosis is not None:
        own["fit"] = diagnosis.fit
        own["fit_reason"] = diagnosis.reason
    own.update(tags or {})
    name = run_name or trial_run_name(record)
    run = client.create_run(experiment_id, run_name=name, tags=own)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        params = {**record.params, **record.settings}
        metrics = [
            Metric(name, value, now, step)
            for name, curve in record.history.items()
            for step, value in enumerate(curve)
        ]
        metrics += [Metric(k, v, now, 0) for k, v in _final_metrics(record, diagnosis).items()]
        _log_in_batches(client, run_id, metrics, [Param(k, str(v)) for k, v in params.items()])
        client.log_batch(run_id, tags=[RunTag("seed", str(record.seed))])
        _log_artifacts(client, run_id, record, task_metric, class_names, figures)
    except BaseException:
        # A half-written run would pass for the trial's record: delete it. The record stays in
        # the Optuna storage and `sync` writes the run again; if MLflow is gone and the delete
        # fails too, `sync` finds the run still RUNNING and replaces it.
        with contextlib.suppress(Exception):
            client.delete_run(run_id)
        raise
    client.set_terminated(run_id, status)
    return run_id


def trial_run_name(record: TrialRecord) -> str:
    """What a trial is at a glance, as its run's name: number, units per layer, optimizer and
    learning rate.

    Example:
        >>> from search.record import TrialRecord
        >>> params = {"n_layers": 2, "units_0": 411, "units_1": 64, "optimizer": "adam",
        ...           "learning_rate": 6.8e-4}
        >>> trial_run_name(TrialRecord(16, "COMPLETE", params, {}, {}, None, None, 0, None,
        ...                            None, {}, None))
        't16 411-64 adam 6.8e-4'
    """
    params = record.params
    layers = int(params.get("n_layers", 0) or 0)
    units = "-".join(str(params[f"units_{i}"]) for i in range(layers) if f"units_{i}" in params)
    parts = [f"t{record.number}", units, str(params.get("optimizer", ""))]
    rate = params.get("learning_rate")
    if isinstance(rate, (int, float)):
        mantissa, exponent = f"{rate:.1e}".split("e")
        parts.append(f"{mantissa}e{int(exponent)}")
    return " ".join(p for p in parts if p)


def _final_metrics(record: TrialRecord, diagnosis: Diagnosis | None) -> dict[str, float]:
    values: dict[str, Any] = {
        "best_val_loss": record.best_val_loss,
        "best_epoch": record.best_epoch,
        "epochs_trained": record.epochs_trained,
        "n_params": record.n_params,
        "train_seconds": record.train_seconds,
        **record.test,
    }
    if diagnosis is not None:
        values.update(diagnosis.metrics())
    # MLflow stores NaN, but a missing value (a pruned trial has no test metrics) is left out
    return {k: float(v) for k, v in values.items() if v is not None and not _is_nan(v)}


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _log_in_batches(
    client: MlflowClient, run_id: str, metrics: list[Any], params: list[Any]
) -> None:
    # MLflow's log_batch accepts at most 1000 metrics and 100 params per call
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def _log_artifacts(
    client: MlflowClient,
    run_id: str,
    record: TrialRecord,
    task_metric: str,
    class_names: Sequence[str] | None,
    figures: Any,
) -> None:
    with tempfile.TemporaryDirectory(prefix="fitscope-") as tmp:
        folder = Path(tmp)
        title = f"trial {record.number} ({record.state.lower()})"
        if record.history.get("loss"):
            figures.learning_curves(
                record.history,
                task_metric,
                record.best_epoch,
                folder / "learning_curves.png",
                title,
            )
        if record.model_summary:
            (folder / "model_summary.txt").write_text(record.model_summary, encoding="utf-8")
        if record.confusion_matrix:
            figures.confusion_matrix(
                record.confusion_matrix, class_names, folder / "confusion_matrix.png", title
            )
        if record.classification_report:
            (folder / "classification_report.txt").write_text(
                record.classification_report, encoding="utf-8"
            )
        if any(folder.iterdir()):
            client.log_artifacts(run_id, str(folder))

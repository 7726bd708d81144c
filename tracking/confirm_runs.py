"""The MLflow side of `fitscope confirm`: its runs, which seeds exist, and the parent's summary.

Every retrain is a run nested under the study's parent run, tagged `fitscope.role=confirm`,
`confirm_of=<trial run id>`, `confirm_index=<i>` and `seed`; a second `confirm` reads those tags
to add only the seeds that are missing. A run is created only once its retrain has ended (the
rerun path), so an interrupted confirm leaves no RUNNING run behind; one that a killed process
left RUNNING while writing is closed FAILED by the next call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.confirm import LOSS, ConfigResult, SeedOutcome, Verdict, table_text
from analysis.diagnosis import Diagnosis
from search.record import TrialRecord
from tracking.study_runs import filter_literal
from tracking.trial_run import ROLE_TAG, log_trial_run

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

ROLE = "confirm"
OF_TAG = "confirm_of"
INDEX_TAG = "confirm_index"
BEST_TAG = "confirmed_best_run_id"
TABLE_ARTIFACT = "confirm/confirm.txt"


@dataclass(frozen=True)
class ConfirmRun:
    """One confirm retrain as MLflow holds it."""

    run_id: str
    index: int
    seed: int
    status: str  # FINISHED | FAILED | RUNNING | KILLED
    fit: str
    failed_training: bool  # FAILED because training diverged: a result, not a fault

    @property
    def counts(self) -> bool:
        """Whether this seed is done: finished, or diverged (retrying would diverge again)."""
        return self.status == "FINISHED" or self.failed_training


def confirm_runs(client: MlflowClient, experiment_id: str, trial_run_id: str) -> list[ConfirmRun]:
    """Every confirm run of one trial run, in index order."""
    query = (f"tags.`{ROLE_TAG}` = '{ROLE}' and "
             f"tags.`{OF_TAG}` = {filter_literal(trial_run_id)}")
    runs = client.search_runs([experiment_id], query, max_results=10_000)
    out = [_confirm_run(run) for run in runs if INDEX_TAG in run.data.tags]
    return sorted(out, key=lambda r: (r.index, r.run_id))


def fail_leftovers(client: MlflowClient, runs: Sequence[ConfirmRun]) -> list[str]:
    """Close FAILED the runs a killed process left RUNNING; their seeds are trained again."""
    left = [r.run_id for r in runs if r.status == "RUNNING"]
    for run_id in left:
        client.set_tag(run_id, "fail_reason", "left RUNNING by a confirm that was killed")
        client.set_terminated(run_id, "FAILED")
    return left


def log_confirm_run(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    study_name: str,
    record: TrialRecord,
    diagnosis: Diagnosis | None,
    task_metric: str,
    class_names: Sequence[str] | None,
    trial_run_id: str,
    index: int,
    tags: dict[str, str],
) -> str:
    """Write one retrain as a confirm run (FINISHED, or FAILED with its reason)."""
    own = {**tags, ROLE_TAG: ROLE, OF_TAG: trial_run_id, INDEX_TAG: str(index)}
    return log_trial_run(
        client, experiment_id, parent_run_id, study_name, record, task_metric, class_names,
        diagnosis, tags=own, run_name=f"confirm-t{record.number}-s{index}",
    )


def seed_outcome(client: MlflowClient, run: ConfirmRun, val_metric: str) -> SeedOutcome:
    """The numbers of one confirm run: best val loss, the val metric at its best epoch (from
    the curve) and its test metrics."""
    data = client.get_run(run.run_id).data
    metrics = {k: v for k, v in data.metrics.items() if k.startswith("test_")}
    best = data.metrics.get("best_epoch")
    if best is not None and val_metric in data.metrics:
        history = sorted(client.get_metric_history(run.run_id, val_metric), key=lambda m: m.step)
        if 0 <= int(best) < len(history):
            metrics[val_metric] = history[int(best)].value
    loss = data.metrics.get(LOSS) if run.status == "FINISHED" else None
    return SeedOutcome(run.seed, loss, metrics, run.fit)


def summarise_parent(
    client: MlflowClient, parent_run_id: str, verdict: Verdict, seeds: int
) -> None:
    """Record the confirmed winner on the study's parent run: its trial run id, its mean (and
    std) best val loss and metrics, and the table as an artifact."""
    from mlflow.entities import Metric, RunTag

    best: ConfigResult = verdict.confirmed
    names = [LOSS, *best.metric_names()]
    metrics = []
    for name in names:
        s = best.stats(name)
        if s.n:
            metrics += [Metric(f"confirmed_mean_{name}", s.mean, 0, 0),
                        Metric(f"confirmed_std_{name}", s.std, 0, 0)]
    tags = [RunTag(BEST_TAG, best.run_id), RunTag("confirmed_best_trial", str(best.trial_number)),
            RunTag("confirmed_seeds", str(seeds)),
            RunTag("confirmed_winner_kept", str(verdict.winner_kept).lower())]
    client.log_batch(parent_run_id, metrics=metrics, tags=tags)
    text = table_text(verdict.ranking) + "\n\n" + "\n".join(verdict.lines) + "\n"
    client.log_text(parent_run_id, text, TABLE_ARTIFACT)


def move_alias_to(client: MlflowClient, model: str, study: str, trial_number: int) -> str:
    """Point the registry alias `best` at the confirmed winner's registered version; what
    happened, as a line.

    It moves only off a version of the same study (another study's holder won elsewhere, on
    its own terms), and only to a version that exists: a trial saves a model only when it
    beat the study's best as it ended, so a confirmed winner may have none.
    """
    from mlflow.exceptions import MlflowException

    from tracking.best_model import BEST_ALIAS

    try:
        holder = client.get_model_version_by_alias(model, BEST_ALIAS)
    except MlflowException:
        return f"alias {BEST_ALIAS}: no registered model {model} holds it; left as it is"
    here = str(trial_number)
    if holder.tags.get("study") != study:
        return f"alias {BEST_ALIAS} stays on study {holder.tags.get('study')!r} (another study)"
    if holder.tags.get("trial") == here:
        return f"alias {BEST_ALIAS} already on trial {here} (version {holder.version})"
    try:
        versions = client.search_model_versions(f"name = {filter_literal(model)}")
    except MlflowException as exc:
        return f"alias {BEST_ALIAS} not moved: {exc}"
    mine = [v for v in versions if v.tags.get("study") == study and v.tags.get("trial") == here]
    if not mine:
        return (f"alias {BEST_ALIAS} stays on trial {holder.tags.get('trial')}: trial {here} has "
                "no registered model (only a trial that was the study's best when it ended "
                "saved one)")
    version = str(max(int(v.version) for v in mine))
    client.set_registered_model_alias(model, BEST_ALIAS, version)
    return f"alias {BEST_ALIAS} moved to trial {here} (version {version})"


def _confirm_run(run: Run) -> ConfirmRun:
    tags = run.data.tags
    fail = tags.get("fail_reason", "")
    return ConfirmRun(
        run_id=run.info.run_id,
        index=int(tags[INDEX_TAG]),
        seed=int(tags.get("seed", -1)),
        status=run.info.status,
        fit=tags.get("fit", "-"),
        failed_training=run.info.status == "FAILED" and fail.startswith("diverged"),
    )

"""`fitscope confirm`: retrain a study's top configurations with new seeds, on the rerun path.

A study ranks its trials by one fit each, with one seed: the winner may simply have drawn a
lucky initialisation. Confirm takes the top K complete trials, retrains each with S new seeds
exactly as the search trained it (`fitscope.rerun`: the trial's params and settings from its
MLflow run, the study's spec, the same data, early stopping, no pruning), logs every retrain as
a run under the study's parent, and ranks the configurations on their mean (`analysis.confirm`).

Seeds are derived from the study seed, the trial number and the seed index, so a second call
computes the same seeds, reads which indices already have a run (`tracking.confirm_runs`) and
trains only the missing ones. With `workers > 1` the (configuration, seed) retrains run in a
pool of that many processes, each loading the data once.

Example:
    >>> confirm_seed(42, 16, 0) != confirm_seed(42, 16, 1) != confirm_seed(42, 19, 0)
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analysis import confirm as stats
from analysis.diagnosis import baseline_loss, diagnose_record
from common.errors import TrackingError
from common.text import first_line
from experiments.tasks import task_kind
from fitscope.invocation import quiet_libraries
from fitscope.rerun import load_data, plan_rerun, retrain
from search.record import MLFLOW_PARENT, SEED, TrialRecord, record_from_fit, record_from_trial
from search.study import describe_failure
from tracking.confirm_runs import (
    confirm_runs,
    fail_leftovers,
    log_confirm_run,
    move_alias_to,
    seed_outcome,
    summarise_parent,
)
from tracking.fingerprint import run_tags
from tracking.study_runs import filter_literal
from tracking.trial_run import ROLE_TAG

if TYPE_CHECKING:
    import optuna
    from mlflow.tracking import MlflowClient


def confirm_seed(study_seed: int, trial_number: int, index: int) -> int:
    """The training seed of retrain `index` of a trial: a stream of its own (the 2 keeps it
    apart from `trial_seed` and `sampler_seed`), so no confirm seed replays the trial's."""
    state = np.random.SeedSequence([study_seed, trial_number, 2, index]).generate_state(1)
    return int(state[0] % (2**31 - 1))


@dataclass(frozen=True)
class Job:
    """One retrain: a configuration (its trial run) and one new seed. Picklable for a pool."""

    tracking: str
    trial_run_id: str
    trial_number: int
    index: int
    seed: int
    data_dir: str | None
    command: str
    verbose: bool = False


def top_trials(study: optuna.Study, k: int) -> list[TrialRecord]:
    """The `k` complete trials with the lowest best val loss (the study's winner first)."""
    records = [record_from_trial(t) for t in study.get_trials(deepcopy=False)]
    done = [r for r in records if r.state == "COMPLETE" and r.best_val_loss is not None
            and math.isfinite(r.best_val_loss)]
    return sorted(done, key=lambda r: (r.best_val_loss, r.number))[:k]


def trial_run_ids(client: MlflowClient, experiment_id: str, parent_run_id: str) -> dict[int, str]:
    """Trial number -> its MLflow run id, for the study's child runs."""
    query = (f"tags.`mlflow.parentRunId` = {filter_literal(parent_run_id)} "
             f"and tags.`{ROLE_TAG}` = 'trial'")
    runs = client.search_runs([experiment_id], query, max_results=50_000)
    return {int(r.data.tags["trial_number"]): r.info.run_id for r in runs
            if r.data.tags.get("trial_number", "").isdigit()}


def run_job(job: Job) -> str:
    """Retrain one configuration with one seed and log it; the confirm run's id.

    A training failure is recorded as a FAILED run with its reason; Ctrl-C logs nothing (the
    run is created only after training), so no run is left RUNNING.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=job.tracking)
    plan = plan_rerun(client, job.trial_run_id)
    plan = dataclasses.replace(plan, seed=job.seed, settings={**plan.settings, "seed": job.seed})
    data = load_data(plan, job.data_dir)  # loaded once per process (experiments.data caches it)
    try:
        record = retrain(plan, data, verbose=job.verbose)
    except Exception as exc:  # this seed fails, the others go on; the run says why
        record = record_from_fit(plan.trial_number, plan.params.flat(), plan.settings, {}, None,
                                 describe_failure(exc))
    kind = task_kind(plan.spec.task)
    diagnosis = diagnose_record(record, baseline_loss(plan.spec.task, data.y_train,
                                                      data.n_classes), dict(plan.spec.diagnosis))
    with _TERMINATION.deferred():  # a run is created and closed, never left half-logged
        return log_confirm_run(
            client, plan.experiment_id, plan.parent_run_id, plan.study_name, record, diagnosis,
            kind.curve_metric, data.class_names, job.trial_run_id, job.index,
            run_tags(job.command, data.sha256()),
        )


class _Termination:
    """A pool worker's SIGTERM (the pool's `terminate` on Ctrl-C): it ends the process at once
    while it trains, but only after the run it is logging is closed.

    SIGTERM's default action killed workers between creating a run and closing it, leaving it
    RUNNING; with epochs that take milliseconds a worker spends much of its time logging.
    """

    def __init__(self) -> None:
        self.logging = False
        self.pending = False

    def install(self) -> None:
        import signal

        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.logging:
            self.pending = True
            return
        raise SystemExit(128 + signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.logging = True
        try:
            yield
        finally:
            self.logging = False
            if self.pending:
                raise SystemExit(143)


_TERMINATION = _Termination()  # per process: the pool's workers install its handler


def execute(
    jobs: Sequence[Job], workers: int, done: Callable[[Job, str | None, str | None], None]
) -> None:
    """Run `jobs` in this process (workers <= 1) or a pool of `workers` processes; `done(job,
    run_id, error)` after each.

    In a pool, Ctrl-C and SIGTERM reach this process only (the workers ignore SIGINT): it
    terminates the workers, whose retrains in progress log nothing, and re-raises.
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            done(*_attempt(job))
        return
    import multiprocessing
    import signal

    # spawn: a forked child would inherit this process's TensorFlow and MLflow state
    context = multiprocessing.get_context("spawn")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    pool = context.Pool(min(workers, len(jobs)), _quiet_process, (jobs[0].verbose,))
    try:
        for outcome in pool.imap_unordered(_attempt, jobs):
            done(*outcome)
        pool.close()
    except BaseException:
        pool.terminate()  # SIGTERM to every worker: nothing half-trained is logged
        raise
    finally:
        pool.join()
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _attempt(job: Job) -> tuple[Job, str | None, str | None]:
    """`run_job`, with a failure to log it as a line: (job, run id, None) or (job, None, why)."""
    try:
        return job, run_job(job), None
    except Exception as exc:  # MLflow refused the run, the data changed: the next call retries
        return job, None, first_line(exc)


def _quiet_process(verbose: bool) -> None:
    """A pool process shares the terminal: the library chatter the main process quiets too."""
    import logging
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _TERMINATION.install()
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    quiet_libraries(verbose)
    if not verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes


@dataclass
class Confirmation:
    """The outcome of one `confirm` call."""

    verdict: stats.Verdict
    results: list[stats.ConfigResult]
    trained: int  # retrains this call ran
    failed: list[str]  # retrains this call could not log, one line each
    alias: str  # what happened to the registry alias `best`


def confirm_study(
    study: optuna.Study,
    client: MlflowClient,
    tracking: str,
    experiment: str,
    task: str,
    top: int,
    seeds: int,
    workers: int = 1,
    data_dir: str | None = None,
    command: str = "fitscope confirm",
    say: Callable[[str], None] = print,
    verbose: bool = False,
) -> Confirmation:
    """Retrain the study's `top` configurations with `seeds` seeds each (only missing ones),
    record the confirmed winner on the parent run and in the study, and judge the result.
    `experiment` names the registered model whose alias `best` may move; `task` the spec's.

    Raises:
        TrackingError: the study has no MLflow parent run, no complete trial, or a top trial has
            no MLflow run (`fitscope sync` writes it).
    """
    parent_id = study.user_attrs.get(MLFLOW_PARENT)
    if not parent_id:
        raise TrackingError(f"study {study.study_name} has no MLflow parent run: run `fitscope "
                            "sync` first")
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(str(parent_id))
    except MlflowException as exc:
        raise TrackingError(f"study {study.study_name}'s parent run {parent_id} is not in this "
                            f"MLflow store (--tracking-uri): {first_line(exc)}") from None
    experiment_id = parent.info.experiment_id
    configs = top_trials(study, top)
    if not configs:
        raise TrackingError(f"study {study.study_name} has no complete trial to confirm")
    run_ids = trial_run_ids(client, experiment_id, str(parent_id))
    missing = [r.number for r in configs if r.number not in run_ids]
    if missing:
        raise TrackingError(f"trial(s) {', '.join(map(str, missing))} of study "
                            f"{study.study_name} have no MLflow run: run `fitscope sync` first")
    study_seed = int(study.user_attrs.get(SEED, 0))
    jobs = []
    for record in configs:
        existing = confirm_runs(client, experiment_id, run_ids[record.number])
        for run_id in fail_leftovers(client, existing):
            say(f"  run {run_id} was left RUNNING by a killed confirm: closed FAILED")
        have = {r.index for r in existing if r.counts}
        jobs += [Job(tracking, run_ids[record.number], record.number, i,
                     confirm_seed(study_seed, record.number, i), data_dir, command, verbose)
                 for i in range(seeds) if i not in have]
    say(f"  {len(configs)} configuration(s) x {seeds} seed(s): {len(jobs)} retrain(s) to run"
        + (f" on {min(workers, len(jobs))} worker processes" if workers > 1 and jobs else ""))
    failed: list[str] = []

    def done(job: Job, run_id: str | None, error: str | None) -> None:
        if error is not None:
            failed.append(f"trial {job.trial_number} seed {job.index}: {error}")
            say(f"  trial {job.trial_number} seed #{job.index} ({job.seed}): not logged: {error}")
        else:
            say(f"  trial {job.trial_number} seed #{job.index} ({job.seed}): run {run_id}")

    execute(jobs, workers, done)
    metric = f"val_{task_kind(task).curve_metric}"
    results = []
    for record in configs:
        runs = [r for r in confirm_runs(client, experiment_id, run_ids[record.number])
                if r.counts and r.index < seeds]
        first = {r.index: r for r in reversed(runs)}  # one run per index, the oldest
        outcomes = [seed_outcome(client, r, metric) for _, r in sorted(first.items())]
        results.append(stats.ConfigResult(record.number, run_ids[record.number],
                                          float(record.best_val_loss or math.nan), outcomes))
    verdict = stats.verdict(results, configs[0].number)
    summarise_parent(client, str(parent_id), verdict, seeds)
    study.set_user_attr(stats.CONFIRM_ATTR, stats.to_json(results))
    alias = move_alias_to(client, experiment, study.study_name, verdict.confirmed.trial_number)
    return Confirmation(verdict, results, len(jobs), failed, alias)

"""`fitscope worker EXP`: one worker process on a shared study.

Started N times by `fitscope search --workers N` (supervised: it asks its supervisor before each
trial), or by any scheduler on many machines (standalone: `--trials` per worker), all pointing
at one PostgreSQL storage and one MLflow server. A worker that dies mid-trial is noticed by the
others through Optuna's heartbeat: after the grace period the next worker to ask for a trial
marks it FAIL, queues its params again once and writes its MLflow run FAILED.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from fitscope import settings as defaults
from fitscope.commands.args import add_store_options, integer, positive_float, positive_int
from fitscope.masking import mask_url

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec
    from search.record import TrialRecord


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "worker", help="run trials of a shared study (one of many workers, any machine)"
    )
    parser.add_argument("experiment", help="a shipped experiment name (see `list`) or a spec path")
    parser.add_argument("--trials", type=positive_int, help="trials this worker runs")
    parser.add_argument("--timeout", type=positive_float, help="stop starting trials after S s")
    parser.add_argument("--seed", type=integer, help="study seed (sampler and per-trial seeds)")
    add_store_options(parser)
    parser.add_argument("--verbose", action="store_true", help="show Keras' per-epoch output")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="faster, not bitwise repeatable kernels (as for `search`)")
    parser.add_argument("--heartbeat", type=positive_int, metavar="S",
                        help="seconds between a running trial's heartbeats (default 30)")
    parser.add_argument("--grace", type=positive_int, metavar="S",
                        help="seconds without a heartbeat after which a trial counts as dead "
                        "(default 120)")
    # set by `fitscope search --workers N` only
    parser.add_argument("--supervisor-fds", help=argparse.SUPPRESS)
    parser.add_argument("--command", help=argparse.SUPPRESS)
    parser.set_defaults(handler=worker)


def worker(args: argparse.Namespace) -> int:
    """Run trials of a shared study until the budget, `--trials` or `--timeout` says stop."""
    from experiments.registry import load_spec

    spec = load_spec(args.experiment).with_search(
        trials=args.trials, timeout=args.timeout, seed=args.seed
    )
    if args.nondeterministic:
        spec = spec.model_copy(
            update={"train": spec.train.model_copy(update={"deterministic": False})}
        )
    from experiments.data import load_dataset
    from fitscope.invocation import command_line, quiet_libraries
    from search.budget import SupervisorGate
    from search.storage import Heartbeat, open_storage
    from search.study import (
        StudySettings,
        default_study_name,
        make_sampler,
        open_study,
        run_study,
        worker_id,
    )
    from search.workers import worker_sampler_seed
    from tracking.diagnosis import baseline_loss
    from tracking.reachability import check_tracking_store
    from tracking.study_tracker import MlflowStudyTracker

    quiet_libraries(args.verbose)
    quiet_worker(args.verbose)
    supervised = args.supervisor_fds is not None
    tracking = defaults.tracking_uri(args.tracking_uri)
    study_name = args.study or default_study_name(spec)
    timeout = os.environ.get("FITSCOPE_WORKER_TIMEOUT")  # what the supervisor's budget has left
    settings = StudySettings(
        study_name=study_name,
        storage=defaults.storage_url(args.storage, tracking),
        trials=spec.search.trials,
        timeout=float(timeout) if timeout else spec.search.timeout,
        seed=spec.search.seed,
        runs_dir=defaults.runs_dir(spec.name, study_name),
        verbose=args.verbose,
        command=args.command or command_line(),
    )
    prefix = f"[{worker_id()}]"
    if not supervised:
        print(f"fitscope worker {spec.name}: study {study_name}, up to {settings.trials} trials\n"
              f"  optuna storage {mask_url(settings.storage)}\n"
              f"  mlflow tracking {mask_url(tracking)}", flush=True)
    check_tracking_store(tracking)
    base = Heartbeat.from_env()
    heartbeat = Heartbeat(args.heartbeat or base.interval, args.grace or base.grace)
    stale = StaleTrialRuns(heartbeat.grace)
    storage = open_storage(settings.storage, heartbeat, on_stale=stale)
    study = open_study(spec, settings, storage=storage)
    # every worker with the study's seed would draw the same "random" startup trials: each gets
    # its own sampler seed (trial seeds still come from the study seed and the trial number)
    study.sampler = make_sampler(spec, worker_sampler_seed(settings.seed), constant_liar=True)
    data = load_dataset(spec, args.data_dir)
    baseline = baseline_loss(spec.task, data.y_train, data.n_classes)
    tracker = MlflowStudyTracker(
        tracking, spec, settings, data.class_names, baseline, data_sha256=data.sha256(),
        role="worker" if supervised else "standalone",
    )
    stale.tracker = tracker
    gate = SupervisorGate.from_arg(args.supervisor_fds) if supervised else None
    observers: list[Any] = [HoldInterrupts(tracker), TrialLines(spec, baseline, prefix)]
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's preemption stops it like Ctrl-C
    try:
        run_study(spec, data, settings, observers, study=study, gate=gate)
    except KeyboardInterrupt:
        print(f"{prefix} interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


class StaleTrialRuns:
    """Heartbeat callback: the trial of a dead worker that this worker failed gets its MLflow
    run, FAILED, with the reason (Optuna itself has already queued its params again)."""

    def __init__(self, grace: int) -> None:
        self.grace = grace
        self.tracker: Any = None  # set once MLflow is open; stale checks start with the trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        import dataclasses

        from search.record import record_from_trial

        record = record_from_trial(trial)
        # the storage refuses attributes on a finished trial, so the reason goes to the run only
        reason = (f"worker {record.worker or '?'} sent no heartbeat for {self.grace} s "
                  "(machine or process died); its params were queued again")
        if self.tracker is not None:
            self.tracker.on_trial_end(study, dataclasses.replace(record, fail_reason=reason))
        print(f"[{_me()}] trial {trial.number} of a dead worker marked FAIL and queued again",
              flush=True)


class HoldInterrupts:
    """Observer wrapper: a SIGINT that arrives while a trial's run is being written is delivered
    right after it, so the supervisor's Ctrl-C never leaves a run half-written (and then written
    a second time by the final sync)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        self.inner.on_study_start(study, spec)

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.inner.on_trial_end(study, record)
            return
        held: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
        try:
            self.inner.on_trial_end(study, record)
        finally:
            signal.signal(signal.SIGINT, previous)
        if held and callable(previous):
            previous(signal.SIGINT, None)  # raises KeyboardInterrupt, as it would have

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        self.inner.on_study_end(study, outcome)


class TrialLines:
    """One line per finished trial, prefixed with the worker (no progress bar: N workers share
    one terminal)."""

    def __init__(self, spec: ExperimentSpec, baseline: float | None, prefix: str) -> None:
        from tracking.console import ConsoleReporter

        headline = "test_accuracy" if spec.task != "regression" else "test_rmse"
        self.console = ConsoleReporter(0, headline, baseline, dict(spec.diagnosis))
        self.prefix = prefix

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        pass

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        print(f"{self.prefix} {self.console.line(record)}", flush=True)

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        pass


def quiet_worker(verbose: bool) -> None:
    """N workers share one terminal: no run URLs after every run, no TensorFlow retracing notes."""
    import logging

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if not verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _me() -> str:
    from search.study import worker_id

    return worker_id()

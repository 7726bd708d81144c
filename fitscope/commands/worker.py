"""`fitscope worker EXP`: one worker process on a shared study.

Started N times by `fitscope search --workers N` (supervised: it asks its supervisor before each
trial), or by any scheduler on many machines (standalone: `--trials` per worker), all pointing
at one PostgreSQL storage and one MLflow server. A worker that dies mid-trial is noticed by the
others through Optuna's heartbeat: after the grace period the next worker to ask for a trial
marks it FAIL, queues its params again once and writes its MLflow run FAILED.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from fitscope import session
from fitscope.commands.args import (
    add_options,
    add_store_options,
    integer,
    positive_float,
    positive_int,
)
from fitscope.invocation import quiet_libraries
from search.budget import SupervisorGate
from search.record import record_from_trial
from search.storage import Heartbeat, open_storage
from search.study import make_sampler, open_study, run_study, worker_id
from tracking.reachability import check_tracking_store

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec
    from reporting.console import ConsoleReporter
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
    add_options(parser, "verbose")
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
    parser.set_defaults(handler=worker, loads_keras=True)


def worker(args: argparse.Namespace) -> int:
    """Run trials of a shared study until the budget, `--trials` or `--timeout` says stop."""
    spec = session.experiment_spec(args.experiment, args.trials, args.timeout, args.seed,
                                   args.nondeterministic)
    quiet_libraries(args.verbose)
    quiet_worker(args.verbose)
    supervised = args.supervisor_fds is not None
    tracking = session.tracking_uri(args.tracking_uri)
    left = os.environ.get("FITSCOPE_WORKER_TIMEOUT")  # what the supervisor's budget has left
    settings = session.study_settings(
        spec, tracking, args.study, args.storage, args.command, args.verbose,
        timeout=float(left) if left else spec.search.timeout,
    )
    prefix = f"[{worker_id()}]"
    if not supervised:
        session.announce(f"fitscope worker {spec.name}", settings, tracking,
                         f", up to {settings.trials} trials")
    check_tracking_store(tracking)
    base = Heartbeat.from_env()
    heartbeat = Heartbeat(args.heartbeat or base.interval, args.grace or base.grace)
    stale = StaleTrialRuns(heartbeat.grace)
    storage = open_storage(settings.storage, heartbeat, on_stale=stale)
    # the data before the study: a data file that fails to load leaves no empty study behind
    current = session.load_session(spec, settings, tracking, args.data_dir, quiet=supervised)
    assert current.data is not None
    study = open_study(spec, settings, storage=storage)
    # the sampler is seeded per trial from the study seed and the trial's number, so workers
    # never draw the same candidates; constant liar keeps TPE away from what others are running
    study.sampler = make_sampler(spec, settings.seed, constant_liar=True)
    tracker = current.mlflow("worker" if supervised else "standalone")
    stale.tracker = tracker
    gate = SupervisorGate.from_arg(args.supervisor_fds) if supervised else None
    observers: list[Any] = [HoldInterrupts(tracker), TrialLines(current.console(total=0), prefix)]
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's preemption stops it like Ctrl-C
    try:
        run_study(spec, current.data, settings, observers, study=study, gate=gate)
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
        record = record_from_trial(trial)
        # the storage refuses attributes on a finished trial, so the reason goes to the run only
        reason = (f"worker {record.worker or '?'} sent no heartbeat for {self.grace} s "
                  "(machine or process died); its params were queued again")
        if self.tracker is not None:
            self.tracker.on_trial_end(study, dataclasses.replace(record, fail_reason=reason))
        print(f"[{worker_id()}] trial {trial.number} of a dead worker marked FAIL and queued again",
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

    def __init__(self, console: ConsoleReporter, prefix: str) -> None:
        self.console = console
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

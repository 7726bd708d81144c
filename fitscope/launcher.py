"""`fitscope search EXP --workers N`: one study, N local worker processes, one MLflow server.

The launcher does what must happen once: opens the study and its MLflow parent run, loads (and
if needed downloads) the data once so the workers find it cached, starts a local `mlflow
server` over the user's tracking store (unless that already is a server), and then supervises
`fitscope worker` processes (fitscope/supervisor.py). At the end it writes any run a dead worker
could not, summarises and closes the parent, and stops the server, also on Ctrl-C or an error.

Storage for parallel runs on one machine: the study's own RDB storage (SQLite by default),
with Optuna's heartbeats, not a JournalFileBackend. Why:
- one study lives in one place: `make search` and `make search WORKERS=4` resume the same
  study, and `fitscope sync`, the dashboard and the reports read it where they always do;
- heartbeats cover what a supervisor cannot: if the launcher itself is killed, the trials left
  RUNNING are failed and retried by the next run after the grace period (a journal has no
  heartbeat, so they would stay RUNNING forever);
- it is the same code path as many machines on PostgreSQL, so the tests of one cover both.
Optuna advises against SQLite for *heavy* parallel use because writers serialise on one file
lock; a few workers writing a handful of rows per epoch wait milliseconds for it, and the
storage is opened with a 60 s busy timeout so a writer waits instead of failing. The tests run
2 workers on SQLite; more workers, or several machines, belong on PostgreSQL (README).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import FitscopeError
from common.masking import mask_url
from fitscope import session
from fitscope.preflight import check_study_outputs
from fitscope.supervisor import Supervisor
from fitscope.workers import choose_gpus, plan_workers
from search.budget import TrialBudget
from search.interrupts import InterruptGuard
from search.record import record_from_trial
from search.storage import open_storage
from search.study import open_study
from tracking.server import LocalMlflowServer, is_http

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec
    from fitscope.report_observer import ReportObserver
    from search.study import StudySettings
    from tracking.live import MlflowObserver


def launch(
    args: argparse.Namespace, spec: ExperimentSpec, settings: StudySettings, tracking: str
) -> int:
    """Run `settings.trials` trials of the study on local workers; return the exit code.

    Example:
        >>> main(["search", "iris", "--workers", "2", "--trials", "6"])  # doctest: +SKIP
        0
    """
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # N workers, 1 terminal
    # the launcher trains nothing, but reading the environment fingerprint starts the Keras
    # backend: it must not take the GPU memory its workers need
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    gpus = choose_gpus(args.gpus)
    per_gpu = args.workers_per_gpu or 1
    count = args.workers or (len(gpus) * per_gpu if gpus else 1)
    slots = plan_workers(count, gpus, per_gpu)
    devices = f"GPUs {','.join(gpus)}" if gpus else f"CPU, {slots[0].threads} thread(s) each"
    print(f"  {count} worker{'s' if count > 1 else ''} ({devices})", flush=True)
    check_study_outputs(tracking, settings.runs_dir, session.reports_dir(spec, settings))

    server = None
    current: session.StudySession | None = None
    tracker: MlflowObserver | None = None
    report: ReportObserver | None = None
    study: optuna.Study | None = None
    outcome = "failed"
    try:
        storage = open_storage(settings.storage)
        uri = tracking
        if not is_http(tracking):
            # serve the user's own store, so runs land where `make ui` and later searches look
            server = LocalMlflowServer(tracking, log_path=settings.runs_dir / "mlflow-server.log")
            server.start()  # answers in 10-30 s: load the data meanwhile
        current = session.load_session(spec, settings, tracking, args.data_dir)
        # after the data: a data file that fails to load leaves no empty study behind
        study = open_study(spec, settings, storage=storage)
        if server is not None:
            server.wait_until_ready()
            uri = server.uri
            print(f"  mlflow server {uri} over {mask_url(tracking)} (stops with the study)",
                  flush=True)
        tracker = current.mlflow("launcher", uri)
        tracker.on_study_start(study, spec)
        report = current.report(uri)
        report.on_study_start(study, spec)
        experiment = _experiment_arg(args.experiment)

        def worker_argv(slot: object, fds: str) -> list[str]:
            # the same experiment and the flags that shape its spec; the study by name
            argv = [sys.executable, "-m", "fitscope", "worker", experiment,
                    "--study", settings.study_name, "--seed", str(settings.seed),
                    "--supervisor-fds", fds, "--command", settings.command]
            if args.data_dir:
                argv += ["--data-dir", str(Path(args.data_dir).resolve())]
            if getattr(args, "nondeterministic", False):
                argv.append("--nondeterministic")
            return argv + (["--verbose"] if settings.verbose else [])

        def write_failed_run(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            assert tracker is not None
            tracker.on_trial_end(study, record_from_trial(trial))

        supervisor = Supervisor(
            study, storage, TrialBudget(settings.trials), slots, worker_argv,
            # secrets travel in the environment, never on a command line others can read
            env={"FITSCOPE_STORAGE": settings.storage, "MLFLOW_TRACKING_URI": uri},
            on_trial_failed=write_failed_run, timeout=settings.timeout,
        )
        outcome = supervisor.run()
    except KeyboardInterrupt:  # before the workers started (data loading, server start)
        outcome = "interrupted"
    finally:
        guard = InterruptGuard()
        with guard:
            guard.hold()  # closing the runs is short; a Ctrl-C now would leave them RUNNING
            try:
                if current is not None and tracker is not None and study is not None:
                    tracker.on_study_end(study, outcome)
                    print(current.console(tracker).summary(study, outcome), flush=True)
                    if report is not None:
                        report.on_study_end(study, outcome)
            finally:
                if server is not None:
                    server.stop()
    if outcome == "interrupted":
        print(f"\ninterrupted: run the same command again to resume study {settings.study_name}",
              file=sys.stderr)
        return 130
    if outcome == "failed":
        raise FitscopeError(
            "the workers stopped before the trials were done (they exited at start-up or kept "
            "dying); their messages are above; the same command resumes"
        )
    return 0


def _experiment_arg(experiment: str) -> str:
    """A spec path made absolute (workers may resolve names elsewhere); a name stays a name."""
    path = Path(experiment)
    return str(path.resolve()) if path.is_file() else experiment

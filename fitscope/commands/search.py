"""`fitscope search EXP`: run or resume a study (composed by fitscope/session.py)."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from common.errors import FitscopeError
from fitscope import session
from fitscope.commands.args import (
    add_options,
    add_store_options,
    integer,
    positive_float,
    positive_int,
)
from fitscope.invocation import quiet_libraries
from fitscope.launcher import launch
from fitscope.preflight import check_study_outputs
from search import interrupts
from search.kerastuner_engine import (
    kerastuner_study_name,
    open_record_study,
    refuse_multi_objective,
    require_kerastuner,
    run_kerastuner,
)
from search.storage import open_storage
from search.study import open_study, run_study


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("search", help="run or resume an Optuna study on an experiment")
    parser.add_argument("experiment", help="a shipped experiment name (see `list`) or a spec path")
    parser.add_argument("--trials", type=positive_int, help="trials this invocation adds")
    parser.add_argument("--timeout", type=positive_float, help="stop starting trials after S s")
    parser.add_argument("--seed", type=integer, help="study seed (sampler and per-trial seeds)")
    add_store_options(parser)
    parser.add_argument("--engine", choices=("optuna", "kerastuner"), default="optuna",
                        help="search engine (default optuna; kerastuner needs the [tuner] extra)")
    parser.add_argument("--tuner", choices=("hyperband", "random", "bayesian"),
                        help="KerasTuner's search with --engine kerastuner (default hyperband)")
    add_options(parser, "verbose")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="faster, not bitwise repeatable kernels (sets train.deterministic "
                        "false; runs record it as param deterministic)")
    parallel = parser.add_argument_group("parallel workers (one machine)")
    parallel.add_argument("--workers", type=positive_int, metavar="N",
                          help="run the trials on N worker processes under a local supervisor, "
                          "logging to a local MLflow server (default: GPUs x workers-per-gpu "
                          "when --gpus is given, else in this process)")
    parallel.add_argument("--gpus", metavar="IDS",
                          help="GPU ids for the workers, round robin (e.g. 0,1; default: all "
                          "visible; none = CPU only)")
    parallel.add_argument("--workers-per-gpu", type=positive_int, metavar="K",
                          help="workers sharing each GPU (default 1)")
    parser.set_defaults(handler=search, loads_keras=True)


def search(args: argparse.Namespace) -> int:
    """Run (or resume) an Optuna study on one experiment, tracked in MLflow."""
    # what `timeout`, `docker stop`, systemd, Slurm and Kubernetes send: stop as for Ctrl-C
    signal.signal(signal.SIGTERM, _terminate)
    spec = session.experiment_spec(args.experiment, args.trials, args.timeout, args.seed,
                                   args.nondeterministic)
    quiet_libraries(args.verbose)
    tracking = session.tracking_uri(args.tracking_uri)
    tuner = _kerastuner_kind(args)  # None: the Optuna engine
    if tuner:
        refuse_multi_objective(spec)  # said before any data loads
    study_name = args.study or (kerastuner_study_name(spec, tuner) if tuner else None)
    settings = session.study_settings(spec, tracking, study_name, args.storage,
                                      verbose=args.verbose)
    session.announce(
        f"fitscope search {spec.name}", settings, tracking,
        f", {settings.trials} trials" + (f", KerasTuner {tuner}" if tuner else "")
        + (f", timeout {settings.timeout:g}s" if settings.timeout else "")
        + f", seed {settings.seed}",
    )
    if args.workers or args.gpus is not None or args.workers_per_gpu:
        if tuner:
            raise FitscopeError("--workers runs Optuna workers; KerasTuner runs in one process")
        return launch(args, spec, settings, tracking)
    check_study_outputs(tracking, settings.runs_dir, session.reports_dir(spec, settings))
    storage = open_storage(settings.storage)  # a bad storage URL: said before loading data
    # the data before the study: a data file that fails to load leaves no empty study behind
    current = session.load_session(spec, settings, tracking, args.data_dir)
    assert current.data is not None
    study = (open_record_study(spec, settings, tuner) if tuner
             else open_study(spec, settings, storage=storage))
    try:
        if tuner:
            run_kerastuner(spec, current.data, settings, current.observers(), tuner, study)
        else:
            run_study(spec, current.data, settings, current.observers(), study=study)
    except KeyboardInterrupt:
        # the runs are closed and the process is ending: a further Ctrl-C must not turn that
        # into a traceback (run_study held them while closing; this is the rest of the way out)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"\ninterrupted: run the same command again to resume study {settings.study_name}",
              file=sys.stderr)
        return 128 + (interrupts.RECEIVED or signal.SIGINT)  # 130 Ctrl-C, 143 SIGTERM
    return 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside a study's guard (loading data, opening stores): as Ctrl-C there."""
    interrupts.note_signal(signum)
    raise KeyboardInterrupt


def _kerastuner_kind(args: argparse.Namespace) -> str | None:
    """The KerasTuner search to run, or None for the Optuna engine."""
    if args.engine != "kerastuner":
        if args.tuner:
            raise FitscopeError("--tuner applies to --engine kerastuner only")
        return None
    require_kerastuner()
    return str(args.tuner or "hyperband")

"""`fitscope search EXP`: run or resume a study, composed from experiments/, search/, tracking/."""

from __future__ import annotations

import argparse
import signal
import sys

from fitscope import settings as defaults
from fitscope.commands.args import add_store_options, integer, positive_float, positive_int
from fitscope.errors import FitscopeError
from fitscope.invocation import command_line, quiet_libraries
from fitscope.masking import mask_url
from fitscope.preflight import check_study_outputs


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
    parser.add_argument("--verbose", action="store_true", help="show Keras' per-epoch output")
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
    parser.set_defaults(handler=search)


def search(args: argparse.Namespace) -> int:
    """Run (or resume) an Optuna study on one experiment, tracked in MLflow."""
    from experiments.registry import load_spec

    spec = load_spec(args.experiment).with_search(
        trials=args.trials, timeout=args.timeout, seed=args.seed
    )
    if getattr(args, "nondeterministic", False):
        # part of the spec, so it also gets its own default study name: a study stays all
        # deterministic or all not, and its reproducibility claim holds for every trial
        spec = spec.model_copy(
            update={"train": spec.train.model_copy(update={"deterministic": False})}
        )
    from experiments.data import load_dataset
    from search.study import StudySettings, default_study_name, open_study, run_study
    from tracking.console import ConsoleReporter
    from tracking.diagnosis import baseline_loss
    from tracking.study_tracker import MlflowStudyTracker

    quiet_libraries(args.verbose)
    tracking = defaults.tracking_uri(args.tracking_uri)
    tuner = _kerastuner_kind(args)  # None: the Optuna engine
    if tuner:
        from search.kerastuner_engine import kerastuner_study_name, open_record_study
    study_name = args.study or (
        kerastuner_study_name(spec, tuner) if tuner else default_study_name(spec)
    )
    settings = StudySettings(
        study_name=study_name,
        storage=defaults.storage_url(args.storage, tracking),
        trials=spec.search.trials,
        timeout=spec.search.timeout,
        seed=spec.search.seed,
        runs_dir=defaults.runs_dir(spec.name, study_name),
        verbose=args.verbose,
        command=command_line(),
    )
    print(
        f"fitscope search {spec.name}: study {study_name}, {settings.trials} trials"
        + (f", KerasTuner {tuner}" if tuner else "")
        + (f", timeout {settings.timeout:g}s" if settings.timeout else "")
        + f", seed {settings.seed}\n  optuna storage {mask_url(settings.storage)}"
        f"\n  mlflow tracking {mask_url(tracking)}"
    )
    if args.workers or args.gpus is not None or args.workers_per_gpu:
        if tuner:
            raise FitscopeError("--workers runs Optuna workers; KerasTuner runs in one process")
        from fitscope.launcher import launch

        return launch(args, spec, settings, tracking)
    check_study_outputs(tracking, settings.runs_dir, defaults.reports_dir(spec.name, study_name))
    study = open_record_study(spec, settings, tuner) if tuner else open_study(spec, settings)
    data = load_dataset(spec, args.data_dir)
    print(f"  data: {data.split_note}; {data.n_features} features")
    baseline = baseline_loss(spec.task, data.y_train, data.n_classes)
    tracker = MlflowStudyTracker(tracking, spec, settings, data.class_names, baseline,
                                 data_sha256=data.sha256())
    headline = "test_accuracy" if spec.task != "regression" else "test_rmse"
    console = ConsoleReporter(
        settings.trials, headline, baseline, dict(spec.diagnosis),
        hints=lambda: [
            f"MLflow: experiment {spec.name}, parent run {tracker.parent_run_id}; open `make ui`",
            f"resume or extend: {settings.command}",
        ],
    )
    from tracking.report_observer import ReportObserver

    # last, so it sees the runs the tracker closed and prints after the console's summary
    report = ReportObserver(defaults.reports_dir(spec.name, study_name), tracking,
                            settings.storage, settings.command, data.class_names,
                            dict(spec.diagnosis))
    try:
        if tuner:
            from search.kerastuner_engine import run_kerastuner

            run_kerastuner(spec, data, settings, [tracker, console, report], tuner, study)
        else:
            run_study(spec, data, settings, [tracker, console, report], study=study)
    except KeyboardInterrupt:
        # the runs are closed and the process is ending: a further Ctrl-C must not turn that
        # into a traceback (run_study held them while closing; this is the rest of the way out)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"\ninterrupted: run the same command again to resume study {study_name}",
              file=sys.stderr)
        return 130
    return 0


def _kerastuner_kind(args: argparse.Namespace) -> str | None:
    """The KerasTuner search to run, or None for the Optuna engine."""
    if args.engine != "kerastuner":
        if args.tuner:
            raise FitscopeError("--tuner applies to --engine kerastuner only")
        return None
    from search.kerastuner_engine import require_kerastuner

    require_kerastuner()
    return str(args.tuner or "hyperband")

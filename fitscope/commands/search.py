"""`fitscope search EXP`: run or resume a study, composed from experiments/, search/, tracking/."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from fitscope import settings as defaults
from fitscope.commands.args import add_store_options, integer, positive_float, positive_int
from fitscope.masking import mask_url


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("search", help="run or resume an Optuna study on an experiment")
    parser.add_argument("experiment", help="a shipped experiment name (see `list`) or a spec path")
    parser.add_argument("--trials", type=positive_int, help="trials this invocation adds")
    parser.add_argument("--timeout", type=positive_float, help="stop starting trials after S s")
    parser.add_argument("--seed", type=integer, help="study seed (sampler and per-trial seeds)")
    add_store_options(parser)
    parser.add_argument("--verbose", action="store_true", help="show Keras' per-epoch output")
    parser.set_defaults(handler=search)


def search(args: argparse.Namespace) -> int:
    """Run (or resume) an Optuna study on one experiment, tracked in MLflow."""
    from experiments.registry import load_spec

    spec = load_spec(args.experiment).with_search(
        trials=args.trials, timeout=args.timeout, seed=args.seed
    )
    from experiments.data import load_dataset
    from search.study import StudySettings, default_study_name, open_study, run_study
    from tracking.console import ConsoleReporter
    from tracking.diagnosis import baseline_loss
    from tracking.study_tracker import MlflowStudyTracker

    _quiet_libraries(args.verbose)
    tracking = defaults.tracking_uri(args.tracking_uri)
    study_name = args.study or default_study_name(spec)
    settings = StudySettings(
        study_name=study_name,
        storage=defaults.storage_url(args.storage, tracking),
        trials=spec.search.trials,
        timeout=spec.search.timeout,
        seed=spec.search.seed,
        runs_dir=defaults.runs_dir(spec.name, study_name),
        verbose=args.verbose,
        command=_command_line(),
    )
    print(
        f"fitscope search {spec.name}: study {study_name}, {settings.trials} trials"
        + (f", timeout {settings.timeout:g}s" if settings.timeout else "")
        + f", seed {settings.seed}\n  optuna storage {mask_url(settings.storage)}"
        f"\n  mlflow tracking {mask_url(tracking)}"
    )
    study = open_study(spec, settings)
    data = load_dataset(spec, args.data_dir)
    print(f"  data: {data.split_note}; {data.n_features} features")
    baseline = baseline_loss(spec.task, data.y_train, data.n_classes)
    tracker = MlflowStudyTracker(tracking, spec, settings, data.class_names, baseline)
    headline = "test_accuracy" if spec.task != "regression" else "test_rmse"
    console = ConsoleReporter(
        settings.trials, headline, baseline, dict(spec.diagnosis),
        hints=lambda: [
            f"MLflow: experiment {spec.name}, parent run {tracker.parent_run_id}; open `make ui`",
            f"resume or extend: {settings.command}",
        ],
    )
    try:
        run_study(spec, data, settings, [tracker, console], study=study)
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to resume study {study_name}",
              file=sys.stderr)
        return 130
    return 0


def _quiet_libraries(verbose: bool) -> None:
    import warnings

    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after that)
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Optuna logs each failed trial with a traceback; our console prints one line with the reason.
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.WARNING if verbose else logging.ERROR)


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["fitscope", *sys.argv[1:]])

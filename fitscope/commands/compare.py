"""`fitscope compare EXP --budget S`: fitscope's Optuna engine and KerasTuner (Hyperband) on the
same spec, seed and wall-clock budget, one after the other, and a side-by-side table of the two.

Each engine runs a fresh study (named `<experiment>-s<seed>-<hash>-compare-<time>`, KerasTuner's
with `-kt-<tuner>`), tracked exactly as `fitscope search` tracks it; the budget alone ends each
search (no trial count), checked before each new trial as Optuna's timeout is. The table goes to
`reports/<experiment>/compare-<date>.md` and to an MLflow run tagged `fitscope.role=comparison`.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fitscope import settings as defaults
from fitscope.commands.args import integer, positive_float
from fitscope.preflight import check_study_outputs

if TYPE_CHECKING:
    import optuna

    from experiments.data import Dataset
    from experiments.spec import ExperimentSpec
    from tracking.comparison import ComparisonRun, EngineResult

DEFAULT_BUDGET = 600.0  # seconds per engine when neither --budget nor the spec's timeout says
UNLIMITED = 2**31 - 1  # no trial count: the wall-clock budget alone ends each engine's search


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare", help="run the Optuna and the KerasTuner engine on one spec, seed and budget"
    )
    parser.add_argument("experiment", help="a shipped experiment name (see `list`) or a spec path")
    parser.add_argument("--budget", type=positive_float,
                        help="wall-clock seconds per engine (default: the spec's search.timeout, "
                        f"else {DEFAULT_BUDGET:g})")
    parser.add_argument("--seed", type=integer, help="study seed of both engines")
    parser.add_argument("--tuner", choices=("hyperband", "random", "bayesian"),
                        default="hyperband", help="KerasTuner's search (default hyperband)")
    parser.add_argument("--storage", help="Optuna storage URL (default: FITSCOPE_STORAGE or "
                        "sqlite beside mlflow.db)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI "
                        "or sqlite:///mlflow.db)")
    parser.add_argument("--data-dir", help="directory holding data files (FITSCOPE_DATA_DIR)")
    parser.add_argument("--verbose", action="store_true", help="show Keras' per-epoch output")
    parser.set_defaults(handler=compare)


@dataclass(frozen=True)
class _Run:
    """What both engines share: one spec, seed, budget, data set and set of stores."""

    spec: ExperimentSpec
    data: Dataset
    budget: float
    tracking: str
    storage: str
    command: str
    baseline: float
    verbose: bool


def compare(args: argparse.Namespace) -> int:
    """Run both engines one after the other and write the side-by-side table."""
    from experiments.registry import load_spec

    spec = load_spec(args.experiment).with_search(seed=args.seed)
    budget = float(args.budget or spec.search.timeout or DEFAULT_BUDGET)
    from experiments.data import load_dataset
    from experiments.tasks import task_kind
    from fitscope.invocation import command_line, quiet_libraries
    from search.kerastuner_engine import require_kerastuner
    from search.study import default_study_name
    from tracking.comparison import ComparisonRun
    from tracking.diagnosis import baseline_loss
    from tracking.fingerprint import study_tags

    require_kerastuner()
    quiet_libraries(args.verbose)
    tracking = defaults.tracking_uri(args.tracking_uri)
    started = datetime.datetime.now()
    base = f"{default_study_name(spec)}-compare-{started:%Y%m%d-%H%M%S}"
    engines = [("optuna", base), ("kerastuner", f"{base}-kt-{args.tuner}")]
    headers = [f"optuna ({spec.search.sampler}, {spec.search.pruner} pruner)",
               f"kerastuner ({args.tuner})"]
    print(f"fitscope compare {spec.name}: optuna ({spec.search.sampler}, {spec.search.pruner} "
          f"pruner) then kerastuner ({args.tuner}), {budget:g}s each, seed {spec.search.seed}")
    check_study_outputs(
        tracking, defaults.runs_dir(spec.name, base), defaults.experiment_reports_dir(spec.name)
    )
    data = load_dataset(spec, args.data_dir)
    print(f"  data: {data.split_note}; {data.n_features} features")
    shared = _Run(spec, data, budget, tracking, defaults.storage_url(args.storage, tracking),
                  command_line(), baseline_loss(spec.task, data.y_train, data.n_classes),
                  args.verbose)
    val_metric = f"val_{task_kind(spec.task).curve_metric}"
    test_metric = "test_accuracy" if spec.task != "regression" else "test_rmse"
    comparison = ComparisonRun(
        tracking, spec.name, f"compare-{started:%Y%m%d-%H%M%S}",
        params={"budget_seconds": budget, "seed": spec.search.seed, "tuner": args.tuner,
                "spec_fingerprint": spec.fingerprint(), "optuna_study": engines[0][1],
                "kerastuner_study": engines[1][1]},
        tags=study_tags(shared.command, data.sha256()),
    )
    results: list[EngineResult] = []
    status, report = "FAILED", None
    try:
        for engine, study_name in engines:
            results.append(_run_engine(shared, engine, study_name, args.tuner, comparison,
                                       val_metric, test_metric))
        report = _write_report(shared, results, headers, started, val_metric, test_metric)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        print("\ninterrupted: the comparison is incomplete; run it again", file=sys.stderr)
        return 130
    finally:
        comparison.finish(results, val_metric, test_metric, str(report) if report else None,
                          status)
    print(f"\ncomparison: {report}; MLflow run {comparison.run_id} (experiment {spec.name})")
    return 0


def _run_engine(
    shared: _Run,
    engine: str,
    study_name: str,
    tuner: str,
    comparison: ComparisonRun,
    val_metric: str,
    test_metric: str,
) -> EngineResult:
    from search.study import StudySettings
    from tracking.comparison import summarize_study
    from tracking.console import ConsoleReporter
    from tracking.study_tracker import MlflowStudyTracker

    spec = shared.spec
    settings = StudySettings(
        study_name=study_name, storage=shared.storage, trials=UNLIMITED, timeout=shared.budget,
        seed=spec.search.seed, runs_dir=defaults.runs_dir(spec.name, study_name),
        verbose=shared.verbose, command=shared.command,
    )
    tracker = MlflowStudyTracker(shared.tracking, spec, settings, shared.data.class_names,
                                 shared.baseline, data_sha256=shared.data.sha256())
    console = ConsoleReporter(None, test_metric, shared.baseline, dict(spec.diagnosis))
    observers: list[Any] = [tracker, _NestUnder(comparison, tracker), console]
    print(f"\n== {engine}: study {study_name}, budget {shared.budget:g}s")
    clock = time.perf_counter()
    study: optuna.Study
    if engine == "optuna":
        from search.study import open_study, run_study

        study = run_study(spec, shared.data, settings, observers, open_study(spec, settings))
    else:
        from search.kerastuner_engine import run_kerastuner

        study = run_kerastuner(spec, shared.data, settings, observers, tuner)
    seconds = time.perf_counter() - clock
    return summarize_study(study, engine, seconds, val_metric, test_metric, tracker.parent_run_id)


class _NestUnder:
    """Observer placed after the tracker: nests the study's parent run under the comparison."""

    def __init__(self, comparison: ComparisonRun, tracker: Any) -> None:
        self.comparison = comparison
        self.tracker = tracker

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        if self.tracker.parent_run_id:
            self.comparison.nest(self.tracker.parent_run_id)

    def on_trial_end(self, study: optuna.Study, record: Any) -> None:
        """Nothing per trial."""

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        """Nothing at the end."""


def _write_report(
    shared: _Run,
    results: list[EngineResult],
    headers: list[str],
    started: datetime.datetime,
    val_metric: str,
    test_metric: str,
) -> Path:
    """`reports/<experiment>/compare-<date>.md` (`-2`, `-3`... for later ones that day)."""
    from fitscope.preflight import writable_dir
    from tracking.comparison import markdown_table
    from tracking.fingerprint import environment

    spec = shared.spec
    folder = writable_dir(defaults.experiment_reports_dir(spec.name), "reports dir")
    path = folder / f"compare-{started:%Y-%m-%d}.md"
    count = 1
    while path.exists():
        count += 1
        path = folder / f"compare-{started:%Y-%m-%d}-{count}.md"
    env = environment()
    text = "\n".join([
        f"# fitscope compare: {spec.name}",
        "",
        f"Same spec (`{spec.name}`, hash {spec.fingerprint()}), seed {spec.search.seed}, data and "
        f"wall-clock budget of {shared.budget:g} s per engine, run one after the other on "
        f"{env.get('cpu', 'this machine')} (Keras backend {env.get('keras_backend', '?')}), "
        f"started {started:%Y-%m-%d %H:%M}.",
        "",
        markdown_table(results, headers, val_metric, test_metric),
        "",
        "The best trial is the one with the lowest best-epoch val_loss; its test metric is "
        "reported, never used to choose. Epochs trained count every trial's epochs (pruned "
        "trials' and Hyperband rounds' included); wall seconds include tracking.",
        "",
        f"Reproduce: `{shared.command}`",
        "",
    ])
    path.write_text(text, encoding="utf-8")
    return path

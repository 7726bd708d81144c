"""`fitscope compare EXP --budget S`: fitscope's Optuna engine and KerasTuner (Hyperband) on the
same spec, seed and wall-clock budget, one after the other, and a side-by-side table of the two.

Each engine runs a fresh study (named `<experiment>-s<seed>-<hash>-compare-<time>`, KerasTuner's
with `-kt-<tuner>`), tracked exactly as `fitscope search` tracks it; the budget alone ends each
search (no trial count), checked before each new trial as Optuna's timeout is. The table goes to
`reports/<experiment>/compare-<date>.md` and to an MLflow run tagged `fitscope.role=comparison`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.folders import writable_dir
from experiments.tasks import task_kind
from fitscope import session
from fitscope import settings as defaults
from fitscope.commands.args import add_options, integer, positive_float
from fitscope.comparison import ComparisonRun, EngineResult, markdown_table, summarize_study
from fitscope.invocation import quiet_libraries
from fitscope.preflight import check_study_outputs
from search.kerastuner_engine import refuse_multi_objective, require_kerastuner, run_kerastuner
from search.study import StudySettings, default_study_name, open_study, run_study
from tracking.fingerprint import environment, study_tags

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec

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
    add_options(parser, "storage", "tracking", "data", "verbose")
    parser.set_defaults(handler=compare, loads_keras=True)


def compare(args: argparse.Namespace) -> int:
    """Run both engines one after the other and write the side-by-side table."""
    spec = session.experiment_spec(args.experiment, seed=args.seed)
    budget = float(args.budget or spec.search.timeout or DEFAULT_BUDGET)
    refuse_multi_objective(spec)  # the KerasTuner half could not search it
    require_kerastuner()
    quiet_libraries(args.verbose)
    tracking = session.tracking_uri(args.tracking_uri)
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
    # one data set, seed, budget and command for both engines: each gets its own study
    shared = session.load_session(spec, _settings(spec, tracking, base, args, budget), tracking,
                                  args.data_dir)
    val_metric = f"val_{task_kind(spec.task).curve_metric}"
    test_metric = shared.headline
    comparison = ComparisonRun(
        tracking, spec.name, f"compare-{started:%Y%m%d-%H%M%S}",
        params={"budget_seconds": budget, "seed": spec.search.seed, "tuner": args.tuner,
                "spec_fingerprint": spec.fingerprint(), "optuna_study": engines[0][1],
                "kerastuner_study": engines[1][1]},
        tags=study_tags(shared.settings.command, shared.data_sha256),
    )
    results: list[EngineResult] = []
    status, report = "FAILED", None
    try:
        for engine, study_name in engines:
            engine_session = dataclasses.replace(
                shared, settings=_settings(spec, tracking, study_name, args, budget))
            results.append(_run_engine(engine_session, engine, args.tuner, comparison,
                                       val_metric))
        report = _write_report(shared, budget, results, headers, started, val_metric,
                               test_metric)
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


def _settings(
    spec: ExperimentSpec, tracking: str, study_name: str, args: argparse.Namespace, budget: float
) -> StudySettings:
    # no trial count: the wall-clock budget alone ends each engine's search
    return session.study_settings(spec, tracking, study_name, args.storage, verbose=args.verbose,
                                  trials=UNLIMITED, timeout=budget)


def _run_engine(
    current: session.StudySession,
    engine: str,
    tuner: str,
    comparison: ComparisonRun,
    val_metric: str,
) -> EngineResult:
    spec, settings, data = current.spec, current.settings, current.data
    assert data is not None
    tracker = current.mlflow()
    observers: list[Any] = [tracker, _NestUnder(comparison, tracker),
                            current.console(tracker, total=None)]
    print(f"\n== {engine}: study {settings.study_name}, budget {settings.timeout:g}s")
    clock = time.perf_counter()
    study: optuna.Study
    if engine == "optuna":
        study = run_study(spec, data, settings, observers, open_study(spec, settings))
    else:
        study = run_kerastuner(spec, data, settings, observers, tuner)
    seconds = time.perf_counter() - clock
    return summarize_study(study, engine, seconds, val_metric, current.headline,
                           tracker.parent_run_id)


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
    shared: session.StudySession,
    budget: float,
    results: list[EngineResult],
    headers: list[str],
    started: datetime.datetime,
    val_metric: str,
    test_metric: str,
) -> Path:
    """`reports/<experiment>/compare-<date>.md` (`-2`, `-3`... for later ones that day)."""
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
        f"wall-clock budget of {budget:g} s per engine, run one after the other on "
        f"{env.get('cpu', 'this machine')} (Keras backend {env.get('keras_backend', '?')}), "
        f"started {started:%Y-%m-%d %H:%M}.",
        "",
        markdown_table(results, headers, val_metric, test_metric),
        "",
        "The best trial is the one with the lowest best-epoch val_loss; its test metric is "
        "reported, never used to choose. Epochs trained count every trial's epochs (pruned "
        "trials' and Hyperband rounds' included); wall seconds include tracking.",
        "",
        f"Reproduce: `{shared.settings.command}`",
        "",
    ])
    path.write_text(text, encoding="utf-8")
    return path

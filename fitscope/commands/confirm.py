"""`fitscope confirm EXP`: retrain a study's top K configurations with S new seeds each and say
whether its winner holds up on the mean (docs/confirm.md).

Exit 0 when every retrain was logged, 1 when some could not be (run it again: it adds only the
missing seeds), 2 for bad input (no such study, no MLflow store).
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from analysis.confirm import table_text
from common.errors import TrackingError
from common.masking import mask_url
from common.text import first_line
from experiments.registry import load_spec
from fitscope import settings as defaults
from fitscope.commands.args import add_options, positive_int, study_name
from fitscope.confirm import confirm_study
from fitscope.invocation import command_line, quiet_libraries
from reporting.report import ReportContext, build_report
from search.record import check_experiment
from search.storage import open_storage
from search.study import default_study_name
from tracking.reachability import check_tracking_store, http_client_defaults
from tracking.report_mlflow import find_parent_run

if TYPE_CHECKING:
    import optuna


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "confirm", help="retrain a study's top configurations with new seeds; is its winner real?",
        description="Retrain the top K complete trials of a study with S new seeds each, on the "
        "rerun path, log every retrain under the study's parent run (fitscope.role=confirm, "
        "confirm_of=<trial run>), and report mean ± std per configuration. A second call adds "
        "only the missing seeds.",
    )
    parser.add_argument("experiment", help="the experiment name or spec path given to `search`")
    parser.add_argument("--study", type=study_name,
                        help="study name (default: derived from experiment and spec)")
    parser.add_argument("--top", type=positive_int, default=3, metavar="K",
                        help="configurations to confirm, best first (default 3)")
    parser.add_argument("--seeds", type=positive_int, default=3, metavar="S",
                        help="new seeds per configuration (default 3)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="retrain in N processes, one (configuration, seed) each (default 1)")
    add_options(parser, "storage", "tracking", "data", "verbose")
    parser.set_defaults(handler=confirm, loads_keras=True)


def confirm(args: argparse.Namespace) -> int:
    """Confirm the study's top configurations; print the table and the verdict."""
    from mlflow.tracking import MlflowClient

    spec = load_spec(args.experiment)
    tracking = defaults.tracking_uri(args.tracking_uri)
    url = defaults.storage_url(args.storage, tracking)
    for what, where in (("Optuna storage", url), ("MLflow store", tracking)):
        if defaults.missing_sqlite_file(where):
            raise TrackingError(f"no {what} at {mask_url(where)}: run `fitscope search "
                                f"{args.experiment}` first, or pass --storage/--tracking-uri")
    quiet_libraries(args.verbose)
    logging.getLogger("mlflow").setLevel(logging.WARNING if args.verbose else logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import optuna

    name = args.study or default_study_name(spec)
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise TrackingError(f"no study {name!r} in {mask_url(url)} (--study)") from None
    check_experiment(study, spec.name)
    http_client_defaults()
    check_tracking_store(tracking)
    print(f"fitscope confirm {spec.name}: study {name}, top {args.top} x {args.seeds} seeds\n"
          f"  mlflow tracking {mask_url(tracking)}", flush=True)
    client = MlflowClient(tracking_uri=tracking)
    done = confirm_study(
        study, client, tracking, spec.name, spec.task, args.top, args.seeds, args.workers,
        args.data_dir, command_line(),
        say=lambda line: print(line, flush=True), verbose=args.verbose,
    )
    print(table_text(done.verdict.ranking))
    for line in done.verdict.lines:
        print(f"  {line}")
    print(f"  {done.alias}")
    _report(study, spec.name, tracking, url)
    if done.failed:
        print(f"  {len(done.failed)} retrain(s) not logged: run the same command again to add "
              "them")
        return 1
    return 0


def _report(study: optuna.Study, experiment: str, tracking: str, storage: str) -> None:
    """Rebuild the study's report with its confirm section, and log it on the parent run."""
    try:
        parent = find_parent_run(tracking, study)
    except Exception as exc:  # the confirm is logged; a report that fails is only said
        print(f"  report: MLflow parent run not reachable ({first_line(exc)})")
        parent = None
    context = ReportContext(command=parent.command if parent else None,
                            parent_run_id=parent.run_id if parent else None,
                            tracking=mask_url(tracking), storage=mask_url(storage))
    path = build_report(study, defaults.reports_dir(experiment, study.study_name), context)
    print(f"report: {path}")
    if parent is not None:
        parent.log_report(path.parent)

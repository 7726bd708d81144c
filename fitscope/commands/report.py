"""`fitscope report EXP`: build a study's self-contained report.html from its Optuna storage (also
while the study runs) and log it on the study's MLflow parent run when that store is reachable."""

from __future__ import annotations

import argparse
import warnings
from typing import TYPE_CHECKING

from common.errors import TrackingError
from common.masking import mask_url
from common.text import first_line
from experiments.registry import load_spec
from fitscope import settings as defaults
from fitscope.commands.args import add_options, study_name
from reporting.report import ReportContext, build_report
from search.record import MLFLOW_PARENT as PARENT_ATTR
from search.storage import open_storage
from search.study import default_study_name
from tracking.reachability import check_tracking_store, http_client_defaults
from tracking.report_mlflow import find_parent_run

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from experiments.spec import ExperimentSpec


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report", help="build reports/<experiment>/<study>/report.html from a study"
    )
    parser.add_argument("experiment", help="a shipped experiment name (see `list`) or a spec path")
    parser.add_argument("--study", type=study_name,
                        help="study name (default: the spec's default study if it "
                        "exists, else the experiment's most recent study in the storage)")
    add_options(parser, "storage", "tracking")
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    """Build the report of one study and print where it is."""
    spec = load_spec(args.experiment)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    tracking = defaults.tracking_uri(args.tracking_uri)
    url = defaults.storage_url(args.storage, tracking)
    if defaults.missing_sqlite_file(url):
        raise TrackingError(f"no Optuna storage at {mask_url(url)}: run `fitscope search "
                            f"{args.experiment}` first, or pass --storage")
    storage = open_storage(url)
    name = args.study or _default_study(spec, storage)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise TrackingError(f"no study {name!r} in {mask_url(url)}") from None
    http_client_defaults()  # a server that stops answering costs seconds, not MLflow's minutes
    try:
        if study.user_attrs.get(PARENT_ATTR):
            check_tracking_store(tracking)  # a dead server: 5 s, not minutes of retries
        parent = find_parent_run(tracking, study)
    except Exception as exc:  # MLflow raises many types for an unreachable store or lost run
        print(f"MLflow parent run not reachable in {mask_url(tracking)} ({first_line(exc)}); "
              "the report is built from the Optuna storage alone")
        parent = None
    context = ReportContext(
        command=parent.command if parent else None,
        parent_run_id=parent.run_id if parent else None,
        tracking=mask_url(tracking),
        storage=mask_url(url),
    )
    experiment = str(study.user_attrs.get("experiment") or spec.name)
    path = build_report(study, defaults.reports_dir(experiment, name), context,
                        overrides=dict(spec.diagnosis))
    print(f"report: {path}")
    if parent is not None:
        parent.log_report(path.parent)
        print(f"  logged on MLflow run {parent.run_id} under report/")
    return 0


def _default_study(spec: ExperimentSpec, storage: BaseStorage) -> str:
    """The spec's default study name if it exists, else the experiment's latest study."""
    from datetime import datetime

    import optuna

    summaries = optuna.get_all_study_summaries(storage)
    wanted = default_study_name(spec)
    if any(s.study_name == wanted for s in summaries):
        return wanted
    mine = [s for s in summaries if s.user_attrs.get("experiment") == spec.name]
    if not mine:
        others = ", ".join(sorted(s.study_name for s in summaries)) or "none"
        raise TrackingError(f"no study of experiment {spec.name!r} in the storage (studies: "
                            f"{others}); pass --study or --storage")
    # summaries come in creation order; a study without trials has no start time
    started = [s for s in mine if s.datetime_start is not None]
    latest = max(started, key=lambda s: s.datetime_start or datetime.min) if started else mine[-1]
    print(f"study {wanted} not found; using {latest.study_name}, the latest of {spec.name}")
    return latest.study_name


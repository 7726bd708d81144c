"""`fitscope rerun RUN_ID`: train one trial again from its MLflow run and compare the curves.

Exit 0 when the rerun is identical or equal within 1e-6, 1 when it differs, 2 when the run
cannot be rerun (unknown id, not a trial run, a missing param, changed data).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from analysis.rerun_compare import compare, environment_differences, report
from common.errors import RerunError
from common.masking import mask_url
from fitscope import session, settings
from fitscope.commands.args import add_options
from fitscope.invocation import command_line
from fitscope.rerun import (
    RerunPlan,
    load_data,
    log_rerun,
    outcome_of_record,
    plan_rerun,
    rerun_backend,
    retrain,
)
from tracking.fingerprint import fingerprint_of, run_tags
from tracking.reachability import check_tracking_store, http_client_defaults


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rerun", help="retrain one trial from its MLflow run and compare with the original",
        description="Rebuild a trial from its MLflow run (params, seed, the study's spec), "
        "retrain it on the same data, log the rerun as a new run (tag rerun_of) and compare "
        "per-epoch loss/val_loss, best epoch and test metrics. Exit 0: identical or equal "
        "within 1e-6; 1: different; 2: cannot rerun.",
    )
    parser.add_argument("run_id", help="MLflow run id of a trial (a child run of a study)")
    add_options(parser, "tracking", "data", "verbose")
    parser.set_defaults(handler=rerun, loads_keras=True)


def rerun(args: argparse.Namespace) -> int:
    """Rerun one trial; print the verdict; exit 0 (same), 1 (different) or 2 (cannot)."""
    from mlflow.tracking import MlflowClient

    tracking = session.tracking_uri(args.tracking_uri)
    if tracking.startswith("sqlite:///") and not Path(tracking.removeprefix("sqlite:///")).is_file():
        # MlflowClient would create an empty store there and then not find the run
        raise RerunError(f"no MLflow store at {mask_url(tracking)} (--tracking-uri, "
                         "MLFLOW_TRACKING_URI)")
    http_client_defaults()  # a server that stops answering costs seconds, not MLflow's minutes
    check_tracking_store(tracking)  # an unreachable server: one line in 5 s, not minutes
    logging.getLogger("mlflow").setLevel(logging.WARNING if args.verbose else logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small spec.json
    client = MlflowClient(tracking_uri=tracking)
    plan = plan_rerun(client, args.run_id)
    backend, backend_note = _choose_backend(plan)
    train = plan.spec.train
    print(
        f"fitscope rerun {plan.run_id}: trial {plan.trial_number} of study {plan.study_name} "
        f"({plan.spec.name}), {plan.original.state.lower()}\n  {plan.params.short()}; seed "
        f"{plan.seed}, {train.max_epochs} epochs max, patience {train.patience}, deterministic "
        f"{str(train.deterministic).lower()}, Keras backend {backend}\n"
        f"  mlflow tracking {mask_url(tracking)}"
    )
    if backend_note:
        print(f"  {backend_note}")
    for note in plan.notes:
        print(f"  {note}")
    data = load_data(plan, args.data_dir)
    record = retrain(plan, data, verbose=args.verbose)
    command = command_line()  # masked: it is recorded as the rerun's `command` tag
    rerun_id = log_rerun(client, plan, record, data, command)
    comparison = compare(plan.original, outcome_of_record(record, plan.spec))
    changes = environment_differences(fingerprint_of(plan.tags),
                                      fingerprint_of(run_tags(command, data.sha256())))
    print(f"  rerun logged as run {rerun_id} (tag rerun_of={plan.run_id})")
    print(report(comparison, changes, _hints(plan.tags, train.deterministic)))
    return 0 if comparison.verdict in ("identical", "within") else 1


def _choose_backend(plan: RerunPlan) -> tuple[str, str | None]:
    """Train on the run's Keras backend unless one is chosen (KERAS_BACKEND, or Keras already
    imported in this process): (the backend, for the header; a note when it is not the run's)."""
    keras = sys.modules.get("keras")
    current = keras.backend.backend() if keras else settings.requested_backend()
    export, note = rerun_backend(plan.settings.get("keras_backend"), current, plan.run_id)
    if export:
        os.environ["KERAS_BACKEND"] = export  # read when Keras is first imported, in retrain
    return export or current or "Keras's default", note


def _hints(tags: dict[str, str], deterministic: bool) -> list[str]:
    hints = []
    if not deterministic:
        hints.append("the original ran with deterministic=false: its kernels need not repeat")
    if tags.get("git_dirty") == "true":
        hints.append("the original ran on a checkout with uncommitted changes (git_dirty=true)")
    if not any(name.startswith("env.") for name in tags):
        hints.append("the original run has no env.* tags: its environment is unknown")
    return hints

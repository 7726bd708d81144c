"""`fitscope sync EXP`: write to MLflow what a study's Optuna storage holds and MLflow lacks.

Every trial keeps its whole record in the Optuna storage, so when MLflow was down during a
study (or the process died before it could log), nothing is lost: this command writes the
missing child runs, replaces half-written ones, refreshes the parent's best-run summary and
closes a parent left RUNNING with the status the study ended with. Running it twice is harmless.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fitscope import settings as defaults
from fitscope.commands.args import add_store_options, integer
from fitscope.masking import mask_text, mask_url

if TYPE_CHECKING:
    import optuna


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sync", help="create the MLflow runs a study is missing (e.g. after MLflow was down)"
    )
    parser.add_argument("experiment", help="the experiment name or spec path given to `search`")
    parser.add_argument("--seed", type=integer, help="seed, for the default study name")
    add_store_options(parser)
    parser.set_defaults(handler=sync)


def sync(args: argparse.Namespace) -> int:
    """Bring the study's MLflow runs up to date with its Optuna storage."""
    from experiments.registry import load_spec
    from search.study import StudySettings, default_study_name
    from tracking.reachability import check_tracking_store

    spec = load_spec(args.experiment).with_search(seed=args.seed)
    tracking = defaults.tracking_uri(args.tracking_uri)
    storage = defaults.storage_url(args.storage, tracking)
    study_name = args.study or default_study_name(spec)
    from fitscope.invocation import quiet_libraries

    quiet_libraries()
    check_tracking_store(tracking)
    study = _load_study(study_name, storage)
    print(f"fitscope sync {spec.name}: study {study_name}, {len(study.trials)} trials in "
          f"{mask_url(storage)}\n  mlflow tracking {mask_url(tracking)}")

    from tracking.study_tracker import CLASS_NAMES_ATTR, DATA_ATTR, MlflowStudyTracker

    class_names = study.user_attrs.get(CLASS_NAMES_ATTR)
    if class_names is None and spec.task != "regression":  # a study from before it was kept
        from experiments.data import load_dataset

        class_names = load_dataset(spec, args.data_dir).class_names
    settings = StudySettings(
        study_name=study_name, storage=storage, trials=0, timeout=None, seed=spec.search.seed,
        runs_dir=defaults.runs_dir(spec.name, study_name),
        command=mask_text(" ".join(shlex.quote(a) for a in ["fitscope", *sys.argv[1:]])),
    )
    tracker = MlflowStudyTracker(
        tracking, spec, settings, class_names, study.user_attrs.get("baseline_loss"),
        data_sha256=study.user_attrs.get(DATA_ATTR),
    )
    written, closed = tracker.sync_study(study)
    listed = f" (trials {', '.join(map(str, written))})" if written else ""
    print(f"  wrote {len(written)} child run(s){listed}; parent run {tracker.parent_run_id}"
          + (f" closed {closed}" if closed else ""))
    return 0


def _load_study(name: str, storage_url: str) -> optuna.Study:
    import optuna

    from fitscope.errors import TrackingError
    from search.storage import open_storage

    if storage_url.startswith("sqlite:///"):
        path = Path(storage_url.removeprefix("sqlite:///"))
        if not path.is_file():  # opening it would create an empty storage and then not find it
            raise TrackingError(f"no Optuna storage at {path} (--storage, FITSCOPE_STORAGE)")
    storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise TrackingError(
            f"no study {name!r} in {mask_url(storage_url)}; studies there: "
            f"{', '.join(names) or 'none'} (--study NAME)"
        ) from None

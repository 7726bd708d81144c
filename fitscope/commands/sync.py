"""`fitscope sync EXP`: write to MLflow what a study's Optuna storage holds and MLflow lacks.

Every trial keeps its whole record in the Optuna storage, so when MLflow was down during a
study (or the process died before it could log), nothing is lost: this command writes the
missing child runs, replaces half-written ones, refreshes the parent's best-run summary and
closes a parent left RUNNING with the status the study ended with. Running it twice is harmless.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from common.errors import TrackingError
from common.masking import mask_url
from fitscope import session
from fitscope import settings as defaults
from fitscope.commands.args import add_store_options, integer
from fitscope.invocation import quiet_libraries
from search.record import check_experiment
from search.storage import Heartbeat, StaleTrialCallback, open_storage
from tracking.reachability import check_tracking_store
from tracking.sync import sync_study

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
    spec = session.experiment_spec(args.experiment, seed=args.seed)
    tracking = session.tracking_uri(args.tracking_uri)
    settings = session.study_settings(spec, tracking, args.study, args.storage, trials=0,
                                      timeout=None)
    quiet_libraries()
    check_tracking_store(tracking)
    stale: list[int] = []
    heartbeat = Heartbeat.from_env()
    study = _load_study(settings.study_name, settings.storage, heartbeat,
                        on_stale=lambda _study, trial: stale.append(trial.number))
    check_experiment(study, spec.name)
    session.announce(f"fitscope sync {spec.name}", settings, tracking,
                     f", {len(study.trials)} trials")
    # a process killed mid-trial (kill -9, a lost machine) left its trial RUNNING: once its
    # heartbeat is older than the grace period it is dead, so fail it (and queue its params again
    # once) before deciding whether the parent can be closed
    _fail_stale_trials(study)
    for number in stale:
        print(f"  trial {number}: no heartbeat for over {heartbeat.grace} s (its process died): "
              "marked FAIL, its params queued again")
    stored = session.stored_session(spec, settings, tracking, study, args.data_dir)
    runs = stored.study_runs()
    written, closed = sync_study(runs, study)
    listed = f" (trials {', '.join(map(str, written))})" if written else ""
    print(f"  wrote {len(written)} child run(s){listed}; parent run {runs.parent_run_id}"
          + (f" closed {closed}" if closed else ""))
    if closed is None and runs.parent_status() == "RUNNING":
        print(f"  parent run left RUNNING: {still_running(study, heartbeat.grace)}")
    return 0


def _fail_stale_trials(study: optuna.Study) -> None:
    import optuna

    optuna.storages.fail_stale_trials(study)


def still_running(study: optuna.Study, grace: int) -> str:
    """Why a parent stays open: the trials still RUNNING, alive by their heartbeat."""
    from optuna.trial import TrialState

    numbers = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    return (f"trial(s) {', '.join(map(str, numbers))} still RUNNING, with a heartbeat in the "
            f"last {grace} s: a process may still be running them; run `fitscope sync` again "
            "once they end (or once they are silent for that long)")


def _load_study(
    name: str, storage_url: str, heartbeat: Heartbeat, on_stale: StaleTrialCallback
) -> optuna.Study:
    import optuna

    path = defaults.missing_sqlite_file(storage_url)
    if path is not None:
        raise TrackingError(f"no Optuna storage at {path} (--storage, FITSCOPE_STORAGE)")
    storage = open_storage(storage_url, heartbeat, on_stale=on_stale)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise TrackingError(
            f"no study {name!r} in {mask_url(storage_url)}; studies there: "
            f"{', '.join(names) or 'none'} (--study NAME)"
        ) from None

"""`fitscope sync`: bring a study's MLflow runs up to date with its Optuna storage.

Every trial keeps its whole record in the Optuna storage, so when MLflow was down during a
study (or the process died before it could log), nothing is lost: this writes the missing child
runs, replaces half-written ones, refreshes the parent's best-run summary and closes a parent
left RUNNING with the status the study ended with. Running it twice is harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search import record as trial_record
from tracking.study_runs import tracking_errors

if TYPE_CHECKING:
    import optuna

    from tracking.study_runs import StudyRuns

TERMINAL = ("FINISHED", "KILLED", "FAILED")


def sync_study(runs: StudyRuns, study: optuna.Study) -> tuple[list[int], str | None]:
    """Write what MLflow lacks; never reopens the parent.

    Returns:
        The trial numbers written, and the status the parent was closed with (None: it was not
        RUNNING, or a worker is still at it).

    Raises:
        TrackingError: MLflow cannot be reached or refuses a write (what was written stays).
    """
    with tracking_errors(runs.tracking_uri, "refused the sync",
                         "run `fitscope sync` again; what was written stays"):
        runs.connect()
        runs.parent_run_id = runs.find_parent(study) or runs.create_parent(study)
        before = runs.parent_status()
        written = runs.write_missing(study)
        runs.summarise(study)  # logging the best model ends the parent FINISHED (restored below)
        closed = _closing_status(study, before)
        if closed or before != "RUNNING":
            runs.close_parent(closed or before)
    return written, closed


def _closing_status(study: optuna.Study, before: str) -> str | None:
    from optuna.trial import TrialState

    if before != "RUNNING" or study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        return None  # closed already, or a worker is still running trials
    status = study.user_attrs.get(trial_record.MLFLOW_PARENT_STATUS)
    # "RUNNING" or nothing recorded: the process ended without closing (killed, crashed)
    return status if status in TERMINAL else "FAILED"

"""Who opens and who closes a study's MLflow parent run, by the role of the process.

- `OwnsParent` ("study", "launcher"): the process that runs the study (or supervises its
  workers) reopens the parent at the start and closes it at the end with the study's outcome.
  The launcher runs after its workers stopped, so it also writes every run still missing.
- `JoinsParent` ("worker"): a supervised worker finds the launcher's parent and writes its own
  trials' runs; it never closes the parent.
- `SharesParent` ("standalone"): one of many independent workers (`fitscope worker`, many
  machines). The first ones agree on one parent (see `open`), and the last to finish, when no
  trial of the study is running or waiting, summarises and closes it; a later worker reopens it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol

from common.text import first_line
from search import record as trial_record
from search.study import worker_id

if TYPE_CHECKING:
    import optuna

    from tracking.study_runs import StudyRuns

log = logging.getLogger(__name__)
PARENT_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
PARENT_SETTLE_S = 5.0  # standalone workers agree on one parent run (see SharesParent.open)


class ParentPolicy(Protocol):
    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        """Return the parent run id this process writes under."""
        ...

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        """At the study's end: write what is missing and close the parent if this role may."""
        ...


class OwnsParent:
    def __init__(self, writes_every_run: bool = False) -> None:
        self.writes_every_run = writes_every_run  # the launcher: dead workers' runs too

    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        parent = runs.reopen_parent(study)
        study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, "RUNNING")
        return parent

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        try:
            runs.write_missing(study, only_worker=None if self.writes_every_run else worker_id())
            runs.summarise(study)
        except Exception as exc:  # report, then still close the parent below
            log.warning(
                "MLflow summary of study %s incomplete: %s", study.study_name, first_line(exc)
            )
        finally:
            status = PARENT_STATUS.get(outcome, "FAILED")
            try:
                study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, status)
            except Exception as exc:  # the Optuna storage is gone too; still try MLflow
                log.warning("could not record the study's outcome: %s", first_line(exc))
            try:
                runs.close_parent(status)
            except Exception as exc:
                log.warning(
                    "could not close MLflow run %s (%s): run `fitscope sync %s --study %s` when "
                    "MLflow is back",
                    runs.parent_run_id,
                    first_line(exc),
                    runs.spec.name,
                    study.study_name,
                )


class JoinsParent:
    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        return runs.find_parent(study) or runs.reopen_parent(study)  # the launcher opened it

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        _write_own_runs(runs, study, outcome, close_if_last=False)


class SharesParent:
    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        """MLflow cannot create a run only if none exists, so each worker that finds no parent
        creates one and records it in the study; the study attribute is last-writer-wins, so
        after PARENT_SETTLE_S (far more than one create call) every such worker reads it again,
        adopts the run it names and deletes its own if that lost."""
        if runs.find_parent(study):
            parent = runs.reopen_parent(study)
        else:
            mine = runs.create_parent(study)
            time.sleep(PARENT_SETTLE_S)
            parent = str(study.user_attrs.get(trial_record.MLFLOW_PARENT) or mine)
            if parent != mine:
                runs.client.delete_run(mine)
        study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, "RUNNING")
        return parent

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        _write_own_runs(runs, study, outcome, close_if_last=True)


def _write_own_runs(
    runs: StudyRuns, study: optuna.Study, outcome: str, close_if_last: bool
) -> None:
    from optuna.trial import TrialState

    try:
        runs.write_missing(study, only_worker=worker_id())
        busy = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
        if not close_if_last or outcome != "finished" or busy:
            return
        runs.summarise(study)
        study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, "FINISHED")
        runs.close_parent("FINISHED")
    except Exception as exc:  # the runs stay in Optuna: `fitscope sync` writes them later
        log.warning(
            "MLflow could not take this worker's last runs of study %s (%s): run "
            "`fitscope sync %s --study %s` later",
            study.study_name,
            first_line(exc),
            runs.spec.name,
            study.study_name,
        )


POLICIES: dict[str, ParentPolicy] = {
    "study": OwnsParent(),
    "launcher": OwnsParent(writes_every_run=True),
    "worker": JoinsParent(),
    "standalone": SharesParent(),
}

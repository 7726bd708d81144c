"""The live MLflow observer of a study: attached to the study loop, it mirrors every finished
trial into a child run while the next one trains, and opens and closes the parent run as the
process's role allows (tracking/parent_policy.py).

No run is left RUNNING: the parent ends FINISHED, KILLED (Ctrl-C) or FAILED, and each child
carries its trial's true state. When MLflow is unreachable, trials go on (their records stay in
the Optuna storage) and `fitscope sync` (tracking/sync.py) writes what is missing later.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from common.text import first_line
from reporting.plot_process import PlotProcess
from tracking.background import BackgroundWriter
from tracking.parent_policy import POLICIES
from tracking.study_runs import tracking_errors

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec
    from search.record import TrialRecord
    from tracking.study_runs import StudyRuns

log = logging.getLogger(__name__)


class MlflowObserver:
    """Study observer that writes the study's runs as they happen.

    Args:
        runs: The study's runs in one tracking store.
        role: "study", "launcher", "worker" or "standalone": who owns the parent run.
        background: Write each trial's child run on a writer thread while the next trial trains
            (the study's end waits for it); False writes it before the next trial starts.
    """

    def __init__(self, runs: StudyRuns, role: str = "study", background: bool = True) -> None:
        if role not in POLICIES:
            raise ValueError(f"role {role!r}: expected one of {', '.join(POLICIES)}")
        self.runs = runs
        self.policy = POLICIES[role]
        self.writer = BackgroundWriter() if background else None
        if background:  # the writer thread must not hold the GIL the training loop needs
            runs.figures = PlotProcess()
        self.unsynced: list[int] = []  # trials MLflow refused: `fitscope sync` writes them
        self.warned_unreachable = False

    @property
    def parent_run_id(self) -> str:
        return self.runs.parent_run_id

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        self.runs.remember_in_study(study)
        with tracking_errors(self.runs.tracking_uri, "is not usable"):
            self.runs.connect()
            self.runs.parent_run_id = self.policy.open(self.runs, study)
            self.runs.load_logged()

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        if record.number in self.runs.logged:
            return
        if self.writer is None:
            self._write(record)
        else:
            self.writer.submit(lambda: self._write(record))

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        if self.writer is not None:
            self.writer.drain()  # every trial's run is written (or known unsynced) from here on
        if isinstance(self.runs.figures, PlotProcess):
            self.runs.figures.close()  # a later trial of this process starts it again
        if self.runs.parent_run_id:
            self.policy.close(self.runs, study, outcome)

    def _write(self, record: TrialRecord) -> None:
        try:
            self.runs.write_trial(record)
        except Exception as exc:  # tracking must never stop the search: the record stays in Optuna
            self.unsynced.append(record.number)
            if not self.warned_unreachable:
                self.warned_unreachable = True
                log.warning(
                    "MLflow could not record trial %d (%s); trials keep running and stay in the "
                    "Optuna storage: run `fitscope sync %s --study %s` later",
                    record.number,
                    first_line(exc),
                    self.runs.spec.name,
                    self.runs.settings.study_name,
                )

"""Study observer that, when the study ends (finished or interrupted), prints the fit summary,
builds the report and logs it on the MLflow parent run.

A report is a view of results that are already safe in the Optuna storage and MLflow: whatever
goes wrong while building it is one warning line, never a failed study. `fitscope report`
rebuilds it at any time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.fit_summary import fit_summary_text
from analysis.judged import judged_trials
from common.masking import mask_url
from common.text import first_line
from reporting.report import ReportContext, build_report
from search.record import CLASS_NAMES as CLASS_NAMES_ATTR
from search.record import TrialRecord
from tracking.report_mlflow import ParentRun, find_parent_run

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec

log = logging.getLogger(__name__)


class ReportObserver:
    """Builds `report.html` in `folder` at the end of every invocation of a study."""

    def __init__(
        self,
        folder: Path,
        tracking_uri: str | None,
        storage: str,
        command: str,
        class_names: Sequence[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.folder = folder
        self.tracking_uri = tracking_uri
        self.storage = storage
        self.command = command
        self.class_names = list(class_names) if class_names else None
        self.overrides = dict(overrides or {})
        self.echo = echo

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        # the confusion matrix of a report built later (`fitscope report`) needs the names
        if self.class_names and study.user_attrs.get(CLASS_NAMES_ATTR) != self.class_names:
            study.set_user_attr(CLASS_NAMES_ATTR, self.class_names)

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        """Nothing per trial: the report is built once, at the end."""

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        try:
            trials = judged_trials(study, self.overrides)
            self.echo(fit_summary_text(trials))
            parent = self._parent(study)
            context = ReportContext(
                command=(parent.command if parent else None) or self.command,  # the original
                parent_run_id=parent.run_id if parent else None,
                tracking=mask_url(self.tracking_uri) if self.tracking_uri else None,
                storage=mask_url(self.storage),
                outcome=outcome,
            )
            path = build_report(study, self.folder, context, self.overrides, trials)
        except Exception as exc:  # matplotlib, plotly, a full disk: the study itself is fine
            log.warning("study report not built (%s); run `fitscope report` to retry",
                        first_line(exc, with_type=True))
            return
        where = "; logged on the MLflow parent run under report/" if self._log(parent) else ""
        self.echo(f"report: {path}{where}")

    def _parent(self, study: optuna.Study) -> ParentRun | None:
        if not self.tracking_uri:
            return None
        try:
            return find_parent_run(self.tracking_uri, study)
        except Exception as exc:  # the tracker already warned about an unreachable store
            log.info("MLflow parent run not reachable: %s", first_line(exc, with_type=True))
            return None

    def _log(self, parent: ParentRun | None) -> bool:
        if parent is None:
            return False
        try:
            parent.log_report(self.folder)
        except Exception as exc:  # the files stay on disk; only the MLflow copy is missing
            log.warning("report not logged to MLflow (%s); it is in %s",
                        first_line(exc, with_type=True), self.folder)
            return False
        return True

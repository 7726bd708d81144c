"""Every trial of a study with its fit diagnosis: the common input of the cross-run views.

Built from the Optuna study alone (records in trial user attrs, the baseline loss and the spec in
study user attrs), so the leaderboard, overlay, fit summary and report work without MLflow and
while the study is still running.

Example:
    >>> import optuna
    >>> judged_trials(optuna.create_study())
    []
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis.diagnosis import Diagnosis, diagnose_record
from search.record import TrialRecord, record_from_trial

if TYPE_CHECKING:
    import optuna

# Only a finished trial is judged: a running one is still falling, which would read as underfit.
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
NO_FIT = "-"  # the fit column of a trial without curves (failed before its first epoch, running)


@dataclass(frozen=True)
class JudgedTrial:
    """One trial's record and its diagnosis (None when it has no curves to judge yet)."""

    record: TrialRecord
    diagnosis: Diagnosis | None

    @property
    def fit(self) -> str:
        """The fit class, or "-" when there is no diagnosis."""
        return self.diagnosis.fit if self.diagnosis else NO_FIT


def judged_trials(
    study: optuna.Study, overrides: Mapping[str, Any] | None = None
) -> list[JudgedTrial]:
    """Every trial in number order, finished ones diagnosed.

    Args:
        study: The study; its user attrs give the baseline loss and the spec.
        overrides: Diagnosis threshold overrides; default: the `diagnosis` block of the spec the
            study was created with, so the report judges as the MLflow runs were judged.
    """
    if overrides is None:
        overrides = study_spec(study).get("diagnosis") or {}
    baseline = study_baseline(study)
    out = []
    for trial in study.get_trials(deepcopy=False):
        record = record_from_trial(trial)
        diagnosis = (
            diagnose_record(record, baseline, dict(overrides)) if record.state in FINISHED else None
        )
        out.append(JudgedTrial(record, diagnosis))
    return out


def study_spec(study: optuna.Study) -> dict[str, Any]:
    """The resolved spec the study was created with (JSON form), or {} for a foreign study."""
    spec = study.user_attrs.get("spec")
    return dict(spec) if isinstance(spec, dict) else {}


def study_baseline(study: optuna.Study) -> float | None:
    """The trivial predictor's training loss, recorded by the MLflow tracker at study start."""
    value = study.user_attrs.get("baseline_loss")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

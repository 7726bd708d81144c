"""What the terminal shows: a progress bar over trials, one line per finished trial, and at the
end the top trials and where to look next."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from analysis.diagnosis import diagnose_record
from search.objectives import is_multi_objective, study_objectives
from search.params import TrialParams
from search.record import TrialRecord, record_from_trial

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec

COUNTS = ("n_params", "epochs_to_best")  # objectives that are whole numbers


class ConsoleReporter:
    """Observer printing the study's progress."""

    def __init__(
        self,
        total_trials: int | None,  # None: no known total (a wall-clock budget)
        headline_metric: str,
        baseline_loss: float | None = None,
        diagnosis_overrides: dict[str, Any] | None = None,
        hints: Callable[[], list[str]] | None = None,
    ) -> None:
        self.total = total_trials
        self.metric = headline_metric  # e.g. test_accuracy or test_rmse
        self.baseline_loss = baseline_loss
        self.overrides = diagnosis_overrides or {}
        self.hints = hints or list  # called at the end: the parent run id is known by then
        self.bar: Any = None
        self.seen: list[TrialRecord] = []

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        from tqdm import tqdm

        # not `study.trials`: that deep-copies every trial with its curves (seconds at 1000s)
        done = len(study.get_trials(deepcopy=False))
        note = f" (resuming: {done} trials already in it)" if done else ""
        tqdm.write(f"study {study.study_name}{note}")
        self.bar = tqdm(total=self.total, unit="trial", desc=spec.name, dynamic_ncols=True)

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        self.seen.append(record)
        if self.bar is not None:
            self.bar.write(self.line(record))
            self.bar.update(1)

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        if self.bar is not None:
            self.bar.close()
        print(self.summary(study, outcome))

    def line(self, record: TrialRecord) -> str:
        """`#  3 COMPLETE val_loss 0.3121 @ep14/24  test_accuracy 0.8812  good_fit  [...]  41s`"""
        diagnosis = diagnose_record(record, self.baseline_loss, self.overrides)
        fit = diagnosis.fit if diagnosis else "-"
        best = _fmt(record.best_val_loss)
        epoch = (
            f"@ep{record.best_epoch + 1}/{record.epochs_trained}"
            if record.best_epoch is not None
            else ""
        )
        test = record.test.get(self.metric)
        test_text = f"{self.metric} {_fmt(test)}" if test is not None else ""
        params = _short_params(record.params)
        seconds = f"{record.duration_seconds:.0f}s" if record.duration_seconds else ""
        reason = (
            f"  ({record.fail_reason})" if record.state == "FAIL" and record.fail_reason else ""
        )
        return (
            f"#{record.number:>3} {record.state:<8} val_loss {best} {epoch:<9} {test_text:<22} "
            f"{fit:<13} {params}  {seconds}{reason}"  # 13: stopped_early, the longest class
        )

    def summary(self, study: optuna.Study, outcome: str) -> str:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
        lines = [
            "",
            f"study {study.study_name}: {outcome}; "
            + ", ".join(f"{n.lower()} {c}" for n, c in counts.items() if c),
        ]
        complete = sorted(
            (t for t in trials if t.state == TrialState.COMPLETE),
            key=lambda t: float(t.values[0]),  # val_loss, the first objective of every study
        )[:5]
        if complete:
            lines.append(
                f"top {len(complete)} by best val_loss "
                "(test metrics are reported, never used to choose):"
            )
            lines.append(f"  {'trial':>5}  {'val_loss':>10}  {self.metric:>16}  params")
            for trial in complete:
                record = record_from_trial(trial)
                lines.append(
                    f"  {trial.number:>5}  {_fmt(trial.values[0]):>10}  "
                    f"{_fmt(record.test.get(self.metric)):>16}  {_short_params(record.params)}"
                )
        if complete and is_multi_objective(study):
            lines.extend(self.pareto_lines(study))
        lines.extend(self.hints())
        return "\n".join(lines)

    def pareto_lines(self, study: optuna.Study, shown: int = 10) -> list[str]:
        """The Pareto front, lowest val_loss first: each trial with every objective's value."""
        names = study_objectives(study)
        front = sorted(study.best_trials, key=lambda t: (t.values[0], t.number))
        lines = [f"Pareto front: {len(front)} trials no other trial beats on "
                 f"{' and '.join(names)} (MLflow tag pareto=true)"]
        lines.append(f"  {'trial':>5}  " + "  ".join(f"{n:>14}" for n in names)
                     + f"  {self.metric:>16}")
        for trial in front[:shown]:
            record = record_from_trial(trial)
            values = (f"{v:.0f}" if n in COUNTS else _fmt(v)
                      for n, v in zip(names, trial.values, strict=True))
            lines.append(f"  {trial.number:>5}  " + "  ".join(f"{v:>14}" for v in values)
                         + f"  {_fmt(record.test.get(self.metric)):>16}")
        if len(front) > shown:
            lines.append(f"  ... and {len(front) - shown} more (leaderboard.csv, column pareto)")
        return lines


def _short_params(params: dict[str, Any]) -> str:
    try:
        return TrialParams.from_flat(params).short()
    except (KeyError, ValueError):  # a trial that failed while its params were being sampled
        return ", ".join(f"{k}={v}" for k, v in params.items())


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4f}"

"""The study report: one self-contained `report.html` plus its pieces, built from the Optuna study.

Everything comes from the Optuna storage (trial records, the spec, seed and baseline loss in the
study's user attrs), so a report can be built without MLflow and while the study still runs:

    reports/<experiment>/<study>/
        report.html                 summary, leaderboard, fit summary, overlay, best trial,
                                    Optuna views
        leaderboard.csv             one row per trial
        fit_summary.txt             the fit summary as printed at the end of a study
        curves_overlay.png          every trial's val_loss, coloured by fit class
        best_learning_curves.png    the best trial's curves (and best_confusion_matrix.png)
        confirm_seeds.png           after `fitscope confirm`: each configuration's seed spread
        optuna_<view>.html          Optuna's views, sharing plotly.min.js in the folder
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.fit_summary import fit_counts, fit_summary_text, param_by_fit
from analysis.judged import JudgedTrial, judged_trials, study_baseline, study_spec
from analysis.leaderboard import leaderboard, write_leaderboard
from experiments.tasks import task_kind
from experiments.thresholds import FitThresholds
from reporting import plots
from reporting import report_html as h
from reporting.confirm_view import confirm_section
from reporting.optuna_views import PARETO_KEY, optuna_views, write_views
from reporting.overlay import COLOURS, curves_overlay
from search.objectives import best_trial, is_multi_objective, pareto_numbers, study_objectives
from search.record import CLASS_NAMES as CLASS_NAMES_ATTR
from search.record import TrialRecord

if TYPE_CHECKING:
    import optuna

REPORT_FILE = "report.html"
LEADERBOARD_ROWS = 200  # a page of 4,000 rows is no leaderboard: the CSV beside it has them all
# anchors of the sections, in page order (tests and links rely on them)
SECTIONS = ("summary", "leaderboard", "fit-summary", "overlay", "best-trial", "optuna-views")


@dataclass(frozen=True)
class ReportContext:
    """What the Optuna study does not know: where it was tracked and how it was started."""

    command: str | None = None  # the command line that reproduces the study
    parent_run_id: str | None = None  # the MLflow parent run
    tracking: str | None = None  # MLflow tracking URI, masked
    storage: str | None = None  # Optuna storage URL, masked
    outcome: str | None = None  # how the invocation that built it ended: finished, interrupted...


def build_report(
    study: optuna.Study,
    folder: Path,
    context: ReportContext | None = None,
    overrides: Mapping[str, Any] | None = None,
    trials: Sequence[JudgedTrial] | None = None,
) -> Path:
    """Write the report and its pieces into `folder`; return the path of report.html.

    Args:
        study: The study (complete, running or interrupted).
        folder: Where the files go (created); earlier files of the same names are replaced.
        context: Command, MLflow run and storage shown in the summary.
        overrides: Diagnosis thresholds; default: the spec's, as stored with the study.
        trials: Already judged trials of this study (saves judging them twice).

    Example:
        >>> import tempfile, optuna
        >>> path = build_report(optuna.create_study(study_name="empty"), Path(tempfile.mkdtemp()))
        >>> path.name, "optuna-views" in path.read_text()
        ('report.html', True)
    """
    context = context or ReportContext()
    folder.mkdir(parents=True, exist_ok=True)
    if trials is None:
        trials = judged_trials(study, overrides)
    spec = study_spec(study)
    experiment = str(study.user_attrs.get("experiment") or spec.get("name") or "?")
    best = _best(study, trials)
    multi = is_multi_objective(study)

    board = leaderboard(trials, pareto_numbers(study) if multi else None)
    write_leaderboard(board, folder / "leaderboard.csv")
    (folder / "fit_summary.txt").write_text(fit_summary_text(trials) + "\n", encoding="utf-8")
    overlay = curves_overlay(
        trials, best.record.number if best else None, folder / "curves_overlay.png",
        f"{experiment} / {study.study_name}: val_loss of every trial, coloured by fit",
    )
    views = optuna_views(study, {t.record.number: t.fit for t in trials})
    write_views(views, folder)

    sections = [
        h.Section("summary", "Study summary", _summary(study, trials, best, experiment, context)),
        h.Section("leaderboard", "Leaderboard", _leaderboard(board)),
        h.Section("fit-summary", "Fit summary", _fit_summary(trials, overrides, spec)),
        h.Section("overlay", "Curves overlay", h.image(overlay, "val_loss of every trial")),
        h.Section("best-trial", "Best trial", _best_trial(study, best, spec, folder)),
        h.Section("optuna-views", "Optuna views", _views(views)),
    ]
    confirmed = confirm_section(study, folder, best.record.number if best else None)
    if confirmed is not None:  # after `fitscope confirm`: beside the best trial
        sections.insert(5, confirmed)
    plotly_js = None
    if any(v.figure is not None for v in views):
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    path = folder / REPORT_FILE
    title = f"fitscope report: {experiment} / {study.study_name}"
    path.write_text(h.page(title, sections, plotly_js), encoding="utf-8")
    return path


def _best(study: optuna.Study, trials: Sequence[JudgedTrial]) -> JudgedTrial | None:
    best = best_trial(study)  # a multi-objective study's: the front's lowest val_loss
    if best is None:  # no complete trial yet
        return None
    return next((t for t in trials if t.record.number == best.number), None)


def _summary(
    study: optuna.Study,
    trials: Sequence[JudgedTrial],
    best: JudgedTrial | None,
    experiment: str,
    context: ReportContext,
) -> str:
    states = Counter(t.record.state for t in trials)
    seed = study.user_attrs.get("seed", "?")
    running = states.get("RUNNING", 0)
    command = context.command or (
        f"fitscope search {experiment} --study {study.study_name} --seed {seed}"
        "   # reconstructed: the MLflow parent run with the original command was not reachable"
    )
    rows: list[tuple[str, str]] = [
        ("experiment", experiment),
        ("study", study.study_name),
        ("seed", str(seed)),
        ("trials", f"{len(trials)}: " + ", ".join(f"{s.lower()} {n}" for s, n in states.items())
         + (" (study still running)" if running else "")),
    ]
    if context.outcome:
        rows.append(("this invocation", context.outcome))
    raw = {"command", "best trial"}
    rows.append(("command", f'<code class="cmd">{h.esc(command)}</code>'))
    if best is not None:
        r = best.record
        rows.append(("best trial", f"#{r.number} {_badge(best.fit)} best val_loss "
                     f"{_num(r.best_val_loss)} at {_epoch(r)}"))
        rows += [(name, _num(value)) for name, value in r.test.items()]
        rows += [("best params", ", ".join(f"{k}={_short(v)}" for k, v in r.params.items()))]
    else:
        rows.append(("best trial", h.esc("none yet: no trial has completed")))
    if is_multi_objective(study):
        raw.add("Pareto front")
        rows.append(("Pareto front", _front(study)))
    baseline = study_baseline(study)
    rows += [
        ("baseline loss", f"{_num(baseline)} (a trivial predictor's training loss)"
         if baseline is not None else "unknown"),
        ("MLflow", f"parent run {context.parent_run_id} in {context.tracking}"
         if context.parent_run_id else "not reached"),
        ("Optuna storage", context.storage or "-"),
        ("generated", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    spec = study_spec(study)
    body = h.key_values(rows, raw=frozenset(raw))
    if spec:
        import yaml

        body += h.details("resolved spec", h.pre(yaml.safe_dump(spec, sort_keys=False)))
    return body


def _front(study: optuna.Study) -> str:
    """One line on the front: its objectives, its trials (lowest val_loss first), its plot."""
    names = study_objectives(study)
    directions = ", ".join(f"{n} ({d.name.lower()})"
                           for n, d in zip(names, study.directions, strict=True))
    front = sorted(study.best_trials, key=lambda t: (t.values[0], t.number))
    listed = ", ".join(f"#{t.number}" for t in front[:20]) + (" ..." if len(front) > 20 else "")
    return h.esc(f"{len(front)} trials on {directions}: {listed}; the best trial is the "
                 "front's lowest val_loss. ") + f'<a href="#view-{PARETO_KEY}">Pareto plot</a>'


def _leaderboard(board: Any) -> str:
    if board.empty:
        return h.note("no trials yet")
    shown = board.head(LEADERBOARD_ROWS)
    cut = (f"; the first {len(shown)} of {len(board)} trials are shown here"
           if len(shown) < len(board) else "")
    pareto = ("; pareto: on the Pareto front of the study's objectives (MLflow tag pareto)"
              if "pareto" in board.columns else "")
    return (h.note("ranked by best val_loss (complete trials first); best_epoch is 0-based as "
                   "in MLflow; test metrics are reported, never used to choose; every trial is "
                   f"in leaderboard.csv{cut}{pareto}") + h.frame_table(shown))


def _fit_summary(
    trials: Sequence[JudgedTrial], overrides: Mapping[str, Any] | None, spec: dict[str, Any]
) -> str:
    counts = fit_counts(trials)
    if counts.empty:
        return h.note("no finished trial yet")
    by_param = param_by_fit(trials)
    chosen = dict(overrides if overrides is not None else spec.get("diagnosis") or {})
    changed = FitThresholds(**chosen).changed()
    thresholds = [
        (name, f"{default:g}" + (f" → {changed[name]:g} (spec)" if name in changed else ""))
        for name, default in FitThresholds().model_dump().items()
    ]
    return (
        "<h3>Trials per fit class</h3>" + h.frame_table(counts, index=True)
        + "<h3>Hyperparameters per fit class</h3>"
        + h.note("numeric: median [min, max]; categorical: count of each value")
        + h.frame_table(by_param, index=True)
        + h.details("rules and thresholds", h.note(
            "first rule that fires: diverged (NaN/inf or exploding train loss) → overfit (val "
            "rose after its minimum, or a large val-train gap) → underfit (train loss near a "
            "trivial predictor's, or both curves still falling steeply) → unstable (jagged val "
            "loss) → good_fit. A trial the pruner (or Hyperband's epoch budget, or an "
            "interruption) stopped while val loss still improved is stopped_early, not underfit: "
            "it never showed what more epochs would do; overfit, diverged and unstable are still "
            "read from its curves") + h.key_values(thresholds))
    )


def _best_trial(
    study: optuna.Study, best: JudgedTrial | None, spec: dict[str, Any], folder: Path
) -> str:
    if best is None:
        return h.note("no complete trial yet")

    record = best.record
    metric = task_kind(spec["task"]).curve_metric if spec.get("task") else "loss"
    title = f"trial {record.number} ({best.fit})"
    parts = []
    if best.diagnosis is not None:
        parts.append(h.note(f"{best.fit}: {best.diagnosis.reason}"))
    if record.history.get("loss"):
        curves = plots.learning_curves(record.history, metric, record.best_epoch,
                                       folder / "best_learning_curves.png", title)
        parts.append(h.image(curves, "learning curves of the best trial"))
    if record.confusion_matrix:
        names = study.user_attrs.get(CLASS_NAMES_ATTR)
        matrix = plots.confusion_matrix(record.confusion_matrix, names,
                                        folder / "best_confusion_matrix.png", title)
        parts.append(h.image(matrix, "confusion matrix of the best trial on the test split"))
    if record.classification_report:
        parts.append(h.details("classification report (test split)",
                               h.pre(record.classification_report)))
    if record.model_summary:
        parts.append(h.details("model summary", h.pre(record.model_summary)))
    return "\n".join(parts)


def _views(views: Sequence[Any]) -> str:
    parts = []
    for view in views:
        parts.append(f'<h3 id="view-{view.key}">{h.esc(view.title)}</h3>')
        if view.figure is not None:  # the slice plot is 300 px per parameter: let it scroll
            parts.append(f'<div class="scroll">{view.div()}</div>')
        if view.note:
            parts.append(h.note(view.note))
    return "\n".join(parts)


def _badge(fit: str) -> str:
    colour = COLOURS.get(fit, COLOURS["-"])
    return f'<span class="fit" style="background:{colour}">{h.esc(fit)}</span>'


def _epoch(record: TrialRecord) -> str:
    if record.best_epoch is None:
        return "-"
    return f"best_epoch {record.best_epoch} (0-based) of {record.epochs_trained} epochs"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


"""Optuna's own study views (optuna.visualization, plotly), with a note where one cannot be drawn.

A tiny study cannot show everything (importances need two complete trials whose parameters
vary; a study whose trials all failed has no history): Optuna then warns, raises or returns an
empty figure, and the view is replaced by a one-line note instead of failing the report.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.judged import NO_FIT
from common.text import first_line
from reporting.overlay import COLOURS
from search.objectives import SELECTION, is_multi_objective, pareto_numbers, study_objectives

if TYPE_CHECKING:
    import optuna

# (key, title, name of the optuna.visualization function)
VIEWS = (
    ("optimization_history", "Optimization history", "plot_optimization_history"),
    ("param_importances", "Parameter importances", "plot_param_importances"),
    ("parallel_coordinate", "Parallel coordinates", "plot_parallel_coordinate"),
    ("slice", "Slice plot", "plot_slice"),
    ("intermediate_values", "Intermediate values (val_loss per epoch)", "plot_intermediate_values"),
)
PARETO_KEY = "pareto_front"  # first among the views of a multi-objective study
TRIAL_NUMBER = re.compile(r'"number": (\d+)')
ON_VAL_LOSS = ("optimization_history", "parallel_coordinate", "slice")  # need a target there
MEANINGLESS = "will be equal"  # Optuna's words when it cannot rank parameter importances
# One line per trial: past this many the views below draw the best trials only (a 4,000-line
# parallel-coordinate plot is a 2 MB blot), and fANOVA grows fewer trees
LINE_VIEWS = ("parallel_coordinate", "intermediate_values")
MAX_LINES = 500
FEWER_TREES_AFTER = 1000  # complete trials; fANOVA's 64 trees take ~10 s per 2,000 trials
PLOTLY_JS = "plotly.min.js"  # what plotly's include_plotlyjs="directory" links to
HEIGHT = "520px"  # plotly's default of 100% collapses to nothing inside a plain page


@dataclass(frozen=True)
class View:
    """One Optuna view: a plotly figure and/or a note (why there is none, or a caveat)."""

    key: str
    title: str
    figure: Any = None  # plotly.graph_objects.Figure
    note: str = ""

    def div(self) -> str:
        """The figure as an HTML fragment that needs plotly.js loaded once by the page."""
        if self.figure is None:
            return ""
        return str(self.figure.to_html(full_html=False, include_plotlyjs=False,
                                       default_height=HEIGHT, default_width="100%"))


def optuna_views(study: optuna.Study, fits: Mapping[int, str] | None = None) -> list[View]:
    """Every view of `VIEWS` for the study, in order; a multi-objective study's Pareto front
    first, its points coloured by `fits` (trial number -> fit class), and the other views
    drawn on val_loss, the first objective.

    Example:
        >>> import optuna
        >>> [v.note for v in optuna_views(optuna.create_study())][0]
        'needs at least one complete trial'
    """
    from optuna import visualization

    views = []
    multi = is_multi_objective(study)
    if multi:
        views.append(_pareto_front(study, fits or {}))
    for key, title, name in VIEWS:
        plot, shown, note = getattr(visualization, name), study, ""
        if key in LINE_VIEWS:
            shown, note = _best_trials(study)
        elif key == "param_importances":
            plot, note = _importances(study, plot)
        if multi and key in ON_VAL_LOSS:  # Optuna asks which objective to draw
            plot = partial(plot, target=_val_loss, target_name=SELECTION)
        view = _draw(key, title, plot, shown)
        views.append(dataclasses.replace(view, note=" ".join(filter(None, [note, view.note]))))
    return views


def _val_loss(trial: optuna.trial.FrozenTrial) -> float:
    return float(trial.values[0])


def _pareto_front(study: optuna.Study, fits: Mapping[int, str]) -> View:
    """Optuna's Pareto-front plot, each point coloured by its trial's fit class; the front's
    points are larger and outlined."""
    from optuna import visualization

    names = study_objectives(study)
    view = _draw(PARETO_KEY, "Pareto front: " + " against ".join(names),
                 partial(visualization.plot_pareto_front, target_names=names), study)
    if view.figure is None:
        return view
    figure = view.figure
    shown_fits: dict[str, None] = {}
    for trace in figure.data:
        classes = [fits.get(_trial_number(text), NO_FIT) for text in trace.text or ()]
        shown_fits.update(dict.fromkeys(classes))
        on_front = "Best Trial" in (trace.hovertemplate or "")  # Optuna's name for the front
        trace.marker.update(color=[COLOURS.get(c, COLOURS[NO_FIT]) for c in classes],
                            colorscale=None, showscale=False, size=12 if on_front else 7,
                            line={"width": 2 if on_front else 0, "color": "black"})
        trace.name = "Pareto front (outlined)" if on_front else "other complete trials"
        trace.showlegend = True
    if len(names) == 2:  # legend entries for the colours: one empty trace per class
        for fit in shown_fits:
            figure.add_scatter(x=[None], y=[None], mode="markers", name=fit,
                               marker={"color": COLOURS.get(fit, COLOURS[NO_FIT]), "size": 9})
    figure.update_layout(showlegend=True)
    size = len(pareto_numbers(study))
    return dataclasses.replace(view, note=" ".join(filter(None, [
        f"{size} trials on the front (outlined): no other trial is better on every objective. "
        "Colours are fit classes; the best trial is the front's lowest val_loss.", view.note])))


def _trial_number(hover: str) -> int:
    """The trial number in Optuna's hover text (the trial as JSON: {"number": 3, ...})."""
    found = TRIAL_NUMBER.search(hover)
    return int(found[1]) if found else -1


def _best_trials(study: optuna.Study) -> tuple[optuna.Study, str]:
    """The study itself, or a copy in memory with its MAX_LINES best complete trials (and no
    others) when it has more trials than that; the note says so."""
    import optuna
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if len(trials) <= MAX_LINES:
        return study, ""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # the first objective: val_loss (the only one, or the selection one of a Pareto study)
    lowest_first = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    best = sorted(complete, key=lambda t: float(t.values[0]), reverse=not lowest_first)
    best = best[:MAX_LINES]
    copy = optuna.create_study(study_name=study.study_name, directions=study.directions)
    if study.metric_names:
        copy.set_metric_names(study.metric_names)
    copy.add_trials(best)
    return copy, (f"the {len(best)} best of {len(complete)} complete trials "
                  f"({len(trials)} in all; every trial is in leaderboard.csv)")


def _importances(study: optuna.Study, plot: Callable[..., Any]) -> tuple[Callable[..., Any], str]:
    """Optuna's default fANOVA, with fewer trees on a large study (same method, coarser)."""
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import TrialState

    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if complete <= FEWER_TREES_AFTER:
        return plot, ""
    evaluator = FanovaImportanceEvaluator(n_trees=16, seed=0)
    return partial(plot, evaluator=evaluator), f"fANOVA with 16 trees over {complete} trials"


def write_views(views: list[View], folder: Path) -> list[Path]:
    """Each drawable view as `optuna_<key>.html`, sharing one plotly.min.js in the folder.

    Opens offline as long as the folder stays together; `report.html` embeds them all as well.
    """
    paths = []
    if any(view.figure is not None for view in views):
        write_plotly_js(folder)
    for view in views:
        if view.figure is None:
            continue
        path = folder / f"optuna_{view.key}.html"
        # "directory": one plotly.min.js beside the files instead of 4.6 MB inlined in each
        view.figure.write_html(path, include_plotlyjs="directory", default_height=HEIGHT)
        paths.append(path)
    return paths


def write_plotly_js(folder: Path) -> Path:
    """`folder/plotly.min.js`, whole or not at all: plotly writes it in place and only when it is
    missing, so a full disk once left a truncated copy that every later report reused.

    Raises:
        OSError: it cannot be written (the temporary file is removed).
    """
    from plotly.offline import get_plotlyjs

    target = folder / PLOTLY_JS
    script = get_plotlyjs().encode("utf-8")
    if target.is_file() and target.stat().st_size == len(script):
        return target
    partial = folder / f".{PLOTLY_JS}.part"
    try:
        partial.write_bytes(script)
        os.replace(partial, target)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    return target


def _draw(key: str, title: str, plot: Callable[..., Any], study: optuna.Study) -> View:
    from optuna.trial import TrialState

    # intermediate values come from pruned and failed trials too; the other views need values
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete and key != "intermediate_values":
        return View(key, title, note="needs at least one complete trial")
    from optuna.exceptions import ExperimentalWarning

    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            figure = plot(study)
    # Optuna raises ValueError/RuntimeError for studies it cannot draw; its importance
    # evaluators can fail inside numpy/sklearn too. The note names it; the report goes on.
    except Exception as exc:
        return View(key, title, note=f"Optuna could not draw it: {first_line(exc)}")
    ignored = (DeprecationWarning, FutureWarning, ExperimentalWarning)  # API notes, not data
    problems = [first_line(w.message) for w in warned if not issubclass(w.category, ignored)]
    if not figure.data:
        return View(key, title, note="not drawn: " + (problems[0] if problems
                                                      else "no trial has values for it yet"))
    # Optuna still draws importances it could not compute ("... importances will be equal"):
    # equal bars would read as a finding, so the note replaces them
    if any(MEANINGLESS in p for p in problems):
        return View(key, title, note=f"not drawn: {problems[0]}")
    # other warnings ("the importance may be inaccurate") go under the figure
    return View(key, title, figure=figure, note=" ".join(problems))

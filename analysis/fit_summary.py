"""The fit summary: how many trials fell into each fit class, and how each hyperparameter's values
distribute per class (do overfit trials have more units? underfit ones tiny learning rates?).

Example:
    >>> import optuna
    >>> from analysis.judged import judged_trials
    >>> print(fit_summary_text(judged_trials(optuna.create_study())))
    fit summary: no finished trial yet
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from analysis.diagnosis import FIT_CLASSES
from analysis.judged import NO_FIT, JudgedTrial
from analysis.leaderboard import ordered_keys

if TYPE_CHECKING:
    import pandas as pd

STATES = ("COMPLETE", "PRUNED", "FAIL")


def fit_counts(trials: Sequence[JudgedTrial]) -> pd.DataFrame:
    """Trials per fit class (rows, in FIT_CLASSES order, "-" for no curves) and state (columns),
    with a total column; classes and states no trial has are left out."""
    import pandas as pd

    judged = [t for t in trials if t.record.state in STATES]
    counts = Counter((t.fit, t.record.state) for t in judged)
    classes = [c for c in (*FIT_CLASSES, NO_FIT) if any(t.fit == c for t in judged)]
    states = [s for s in STATES if any(t.record.state == s for t in judged)]
    frame = pd.DataFrame(
        [[counts[(c, s)] for s in states] for c in classes], index=classes, columns=states
    )
    frame["total"] = frame.sum(axis=1)
    frame.index.name = "fit"
    return frame


def param_by_fit(trials: Sequence[JudgedTrial]) -> pd.DataFrame:
    """One row per hyperparameter, one column per fit class present ("overfit (n=4)").

    A numeric parameter's cell is "median [min, max]" over that class's trials; a categorical
    one's is the count of each value ("adam 3, sgd 1"). Conditional parameters (units_2,
    momentum) count only the trials that have them. Trials without a diagnosis are left out.
    """
    import pandas as pd

    by_class: dict[str, list[dict[str, Any]]] = {}
    for trial in trials:
        if trial.diagnosis is not None:
            by_class.setdefault(trial.fit, []).append(trial.record.params)
    classes = [c for c in FIT_CLASSES if c in by_class]
    names = ordered_keys(p for c in classes for p in by_class[c])
    numeric = {name: _is_numeric(by_class, name) for name in names}
    cells = {
        f"{c} (n={len(by_class[c])})": [_cell(by_class[c], name, numeric[name]) for name in names]
        for c in classes
    }
    frame = pd.DataFrame(cells, index=names)
    frame.index.name = "param"
    return frame


def fit_summary_text(trials: Sequence[JudgedTrial]) -> str:
    """Both tables as terminal text, printed at the end of a study."""
    counts = fit_counts(trials)
    if counts.empty:
        return "fit summary: no finished trial yet"
    # unnamed index: pandas would print its name on a line of its own
    lines = ["fit summary (trials per fit class and state):",
             _indent(counts.rename_axis(None).to_string())]
    params = param_by_fit(trials)
    if not params.empty:
        lines += ["hyperparameters per fit class (numeric: median [min, max]; categorical: "
                  "counts):", _indent(params.rename_axis(None).to_string())]
    return "\n".join(lines)


def _is_numeric(by_class: dict[str, list[dict[str, Any]]], name: str) -> bool:
    values = [p[name] for ps in by_class.values() for p in ps if name in p]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _cell(params: list[dict[str, Any]], name: str, numeric: bool) -> str:
    values = [p[name] for p in params if name in p and p[name] is not None]
    if not values:
        return ""
    if numeric:
        finite = [float(v) for v in values if math.isfinite(float(v))]
        if not finite:
            return ""
        med, low, high = statistics.median(finite), min(finite), max(finite)
        return _num(med) if low == high else f"{_num(med)} [{_num(low)}, {_num(high)}]"
    counts = Counter(str(v) for v in values)
    return ", ".join(f"{value} {n}" for value, n in counts.most_common())


def _num(value: float) -> str:
    return f"{value:.3g}"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())

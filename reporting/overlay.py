"""Every trial's val_loss curve on one plot, coloured by fit class, the best trial highlighted.

Where the curves span more than a decade (a diverging or a slow trial beside good ones) the y
axis is logarithmic, so the good curves are not squashed into a line at the bottom.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.judged import NO_FIT, JudgedTrial
from reporting.plots import new_figure

# One colour per class, fixed so that every report reads the same (matplotlib's tab10 hues).
COLOURS = {
    "good_fit": "#2ca02c",
    "overfit": "#d62728",
    "underfit": "#1f77b4",
    "unstable": "#ff7f0e",
    "diverged": "#9467bd",
    NO_FIT: "#7f7f7f",
}
LOG_SPAN = 10.0  # max / min of the plotted values above which the y axis goes logarithmic


def curves_overlay(
    trials: Sequence[JudgedTrial], best_number: int | None, path: Path, title: str = ""
) -> Path:
    """Plot each trial's finite val_loss prefix against its epoch (1-based) and save a PNG.

    A curve that ends in NaN/inf is drawn up to its last finite epoch and marked with an x there.
    The best trial is drawn last, thick and black, so no other curve hides it.

    Example:
        >>> import tempfile, optuna
        >>> from analysis.judged import judged_trials
        >>> out = Path(tempfile.mkdtemp()) / "overlay.png"
        >>> curves_overlay(judged_trials(optuna.create_study()), None, out).is_file()
        True
    """
    fig = new_figure((9, 5))
    ax = fig.subplots()
    counts = Counter(t.fit for t in trials if _finite_prefix(t))
    labelled: set[str] = set()
    values: list[float] = []
    best = None
    for trial in trials:
        curve = _finite_prefix(trial)
        if not curve:
            continue
        values += curve
        if trial.record.number == best_number:
            best = (trial, curve)
            continue
        label = None if trial.fit in labelled else f"{trial.fit} ({counts[trial.fit]})"
        labelled.add(trial.fit)
        colour = COLOURS.get(trial.fit, COLOURS[NO_FIT])
        _draw(ax, trial, curve, colour, label, width=1.2, alpha=0.7)
    if best is not None:
        trial, curve = best
        _draw(ax, trial, curve, "black", f"best: trial {trial.record.number} ({trial.fit})",
              width=2.8, alpha=1.0)
        if trial.fit not in labelled:  # its class would otherwise be missing from the legend
            ax.plot([], [], color=COLOURS.get(trial.fit, COLOURS[NO_FIT]),
                    label=f"{trial.fit} ({counts[trial.fit]})")
    if wants_log_scale(values):
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _pos: f"{value:g}")  # 300, not 3 x 10^2
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    if values:
        ax.legend(fontsize=8, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no curves yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val_loss")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title or "val_loss of every trial, coloured by fit diagnosis")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def wants_log_scale(values: Sequence[float]) -> bool:
    """True when all values are positive and span more than LOG_SPAN (max / min).

    Example:
        >>> wants_log_scale([0.3, 12.0]), wants_log_scale([0.3, 0.9]), wants_log_scale([0.0, 9])
        (True, False, False)
    """
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_SPAN


def _finite_prefix(trial: JudgedTrial) -> list[float]:
    curve = trial.record.history.get("val_loss") or []
    out = []
    for value in curve:
        if not math.isfinite(value):
            break
        out.append(float(value))
    return out


def _draw(ax: Any, trial: JudgedTrial, curve: list[float], colour: str, label: str | None,
          width: float, alpha: float) -> None:
    epochs = range(1, len(curve) + 1)
    ax.plot(epochs, curve, color=colour, linewidth=width, alpha=alpha, label=label)
    full = trial.record.history.get("val_loss") or []
    if len(curve) < len(full):  # it went NaN/inf after this point
        ax.plot([len(curve)], [curve[-1]], marker="x", markersize=9, color=colour, alpha=alpha)

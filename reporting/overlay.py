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
    "stopped_early": "#17becf",
    NO_FIT: "#7f7f7f",
}
LOG_SPAN = 10.0  # max / min of the plotted values above which the y axis goes logarithmic
CLEAR_CURVES = 50  # up to this many curves each is drawn plainly; more get fainter


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
    curves = [(trial, _finite_prefix(trial)) for trial in trials]
    curves = [(trial, curve) for trial, curve in curves if curve]
    counts = Counter(trial.fit for trial, _ in curves)
    # thousands of opaque lines are one blot: fainter and thinner as the study grows
    alpha = 0.7 if len(curves) <= CLEAR_CURVES else max(0.06, 0.7 * (CLEAR_CURVES / len(curves)))
    width = 1.2 if len(curves) <= CLEAR_CURVES else 0.6
    values = [value for _, curve in curves for value in curve]
    best = next(((t, c) for t, c in curves if t.record.number == best_number), None)
    order = list(COLOURS)
    for fit in sorted(counts, key=lambda name: order.index(name) if name in order else len(order)):
        members = [(t, c) for t, c in curves if t.fit == fit and t.record.number != best_number]
        colour = COLOURS.get(fit, COLOURS[NO_FIT])
        _draw_class(ax, members, colour, f"{fit} ({counts[fit]})", width, alpha)
    if best is not None:
        trial, curve = best
        _draw_class(ax, [best], "black", f"best: trial {trial.record.number} ({trial.fit})",
                    2.8, 1.0)
        if not any(t.fit == trial.fit for t, _ in curves if t is not trial):
            # its class would otherwise be missing from the legend
            ax.plot([], [], color=COLOURS.get(trial.fit, COLOURS[NO_FIT]),
                    label=f"{trial.fit} ({counts[trial.fit]})")
    if values:
        ax.set_xlim(0.5, max(len(c) for _, c in curves) + 0.5)
        ax.set_ylim(*_limits(values))
    if wants_log_scale(values):
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _pos: f"{value:g}")  # 300, not 3 x 10^2
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    if values:
        legend = ax.legend(fontsize=8, loc="upper right")
        for handle in legend.legend_handles:  # faint curves, but a legible key
            if handle is not None:
                handle.set_alpha(1.0)
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


def _draw_class(ax: Any, members: list[tuple[JudgedTrial, list[float]]], colour: str,
                label: str, width: float, alpha: float) -> None:
    """One class's curves as one LineCollection (one artist, not one per trial: 4,000 curves
    draw in a second instead of minutes), with an x where a curve went NaN/inf."""
    from matplotlib.collections import LineCollection

    if not members:
        return
    lines = [list(zip(range(1, len(curve) + 1), curve, strict=True)) for _, curve in members]
    ax.add_collection(LineCollection(lines, colors=colour, linewidths=width, alpha=alpha,
                                     label=label))
    ends = [(len(curve), curve[-1]) for trial, curve in members
            if len(curve) < len(trial.record.history.get("val_loss") or [])]
    if ends:  # it went NaN/inf after this point
        xs, ys = zip(*ends, strict=True)
        ax.scatter(xs, ys, marker="x", s=60, color=colour, alpha=max(alpha, 0.5))


def _limits(values: list[float]) -> tuple[float, float]:
    """The y range with a margin (a collection, unlike plot, does not rescale the axes)."""
    low, high = min(values), max(values)
    if low > 0 and wants_log_scale(values):
        return low / 1.2, high * 1.2
    margin = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return low - margin, high + margin

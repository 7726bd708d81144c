"""Per-trial figures: learning curves and the confusion matrix (matplotlib, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def new_figure(figsize: tuple[float, float]) -> Any:
    """A figure that belongs to no pyplot state: files only, no display, and safe to draw in
    the tracker's writer thread while the main thread trains (pyplot's global figure registry
    is not thread-safe)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def learning_curves(
    history: dict[str, list[float]],
    metric: str,
    best_epoch: int | None,
    path: Path,
    title: str = "",
) -> Path:
    """Loss and the task metric, train vs val, per epoch, with the restored best epoch marked."""
    panels = [name for name in ("loss", metric) if name in history]
    fig = new_figure((5.5 * max(1, len(panels)), 4))
    axes = fig.subplots(1, max(1, len(panels)))
    axes = list(axes) if len(panels) > 1 else [axes]
    for ax, name in zip(axes, panels, strict=False):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], label=f"train {name}")
        if f"val_{name}" in history:
            ax.plot(
                range(1, len(history[f"val_{name}"]) + 1),
                history[f"val_{name}"],
                label=f"val {name}",
            )
        if best_epoch is not None:
            ax.axvline(
                best_epoch + 1, color="grey", linestyle="--", label=f"best epoch {best_epoch + 1}"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    # fixed margins, not tight_layout(): its extra draw cost a third of the ~0.4 s this figure
    # takes on 2 cores, once per trial on the writer thread beside the next trial's training;
    # the labels here are short and known (epoch, loss, the metric, tick values)
    width = fig.get_figwidth()  # inches: room for tick labels like 0.625 or 2000 and the label
    fig.subplots_adjust(left=0.85 / width, right=1 - 0.15 / width, bottom=0.13,
                        top=0.88 if title else 0.95, wspace=0.3)
    fig.savefig(path, dpi=90)
    return path


def confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str] | None, path: Path, title: str = ""
) -> Path:
    """A confusion matrix with counts in the cells (rows: true class, columns: predicted)."""
    import numpy as np

    cm = np.asarray(matrix)
    names = list(class_names) if class_names else [str(i) for i in range(len(cm))]
    size = max(4.0, 0.6 * len(names) + 2)
    fig = new_figure((size, size))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for (i, j), count in np.ndenumerate(cm):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
            fontsize=8,
        )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path

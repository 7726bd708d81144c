"""The figures process draws what reporting.plots draws, in another process, and a study never
loses a figure to it."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

from reporting import plots
from reporting.plot_process import PlotProcess

HISTORY = {"loss": [0.9, 0.6, 0.5], "val_loss": [1.0, 0.7, 0.65],
           "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.45, 0.66, 0.7]}
MATRIX = [[5, 1, 0], [2, 3, 1], [0, 0, 6]]


def test_the_child_draws_the_same_figures_as_this_process(tmp_path: Path) -> None:
    figures = PlotProcess()
    try:
        drawn = [figures.learning_curves(HISTORY, "accuracy", 2, tmp_path / "a.png", "trial 3"),
                 figures.confusion_matrix(MATRIX, ["a", "b", "c"], tmp_path / "b.png", "t")]
        child = figures._child
        assert child is not None and child.pid != os.getpid() and child.poll() is None
    finally:
        figures.close()
    here = [plots.learning_curves(HISTORY, "accuracy", 2, tmp_path / "c.png", "trial 3"),
            plots.confusion_matrix(MATRIX, ["a", "b", "c"], tmp_path / "d.png", "t")]
    assert drawn == [tmp_path / "a.png", tmp_path / "b.png"]
    assert [p.read_bytes() for p in drawn] == [p.read_bytes() for p in here]
    assert child.poll() == 0  # close() ended it


def test_a_dead_child_costs_no_figure_and_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    figures = PlotProcess()
    try:
        figures.learning_curves(HISTORY, "accuracy", None, tmp_path / "1.png")
        assert figures._child is not None
        figures._child.kill()
        figures._child.wait()
        with caplog.at_level(logging.WARNING, logger="reporting.plot_process"):
            for n in (2, 3):
                assert figures.learning_curves(HISTORY, "accuracy", None,
                                               tmp_path / f"{n}.png").stat().st_size > 0
        assert figures._child is None  # no new child: drawn here from then on
    finally:
        figures.close()
    assert len([r for r in caplog.records if "figures process failed" in r.message]) == 1


def test_a_figure_that_fails_raises_here_and_the_child_goes_on(tmp_path: Path) -> None:
    figures = PlotProcess()
    try:
        with pytest.raises(RuntimeError, match="drawing learning_curves failed"):
            figures.learning_curves(HISTORY, "accuracy", None, tmp_path / "no" / "such.png")
        assert figures.learning_curves(HISTORY, "accuracy", None, tmp_path / "ok.png").exists()
    finally:
        figures.close()


def test_ctrl_c_to_the_process_group_leaves_the_child_to_the_study(tmp_path: Path) -> None:
    figures = PlotProcess()
    try:
        figures.learning_curves(HISTORY, "accuracy", None, tmp_path / "1.png")
        assert figures._child is not None
        os.kill(figures._child.pid, signal.SIGINT)
        assert figures.learning_curves(HISTORY, "accuracy", None, tmp_path / "2.png").exists()
        assert figures._child is not None and figures._child.poll() is None
    finally:
        figures.close()

"""Leaderboard, fit summary and overlay on hand-made trial records (no training, no storage)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from analysis.diagnosis import diagnose
from analysis.fit_summary import fit_counts, fit_summary_text, param_by_fit
from analysis.judged import JudgedTrial
from analysis.leaderboard import leaderboard
from reporting.overlay import curves_overlay, wants_log_scale
from search.record import TrialRecord


def judged(number: int, state: str, val: list[float], **params: Any) -> JudgedTrial:
    loss = [v * 0.9 for v in val]
    finite = [v for v in val if math.isfinite(v)]
    record = TrialRecord(
        number=number, state=state, params=params, settings={},
        history={"loss": loss, "val_loss": val},
        best_epoch=val.index(min(finite)) if finite else None,
        best_val_loss=min(finite) if finite else None, epochs_trained=len(val),
        n_params=100 * number if state == "COMPLETE" else None, train_seconds=1.0,
        test={"test_accuracy": 0.9} if state == "COMPLETE" else {}, fail_reason=None,
        duration_seconds=2.5,
    )
    diagnosis = diagnose(loss, val, 2.0) if state != "RUNNING" else None
    return JudgedTrial(record, diagnosis)


FLAT = [1.0, 0.5, 0.4, 0.38, 0.375, 0.372, 0.371, 0.37]  # good_fit
RISING = [1.0, 0.5, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65]  # overfit: +62% five epochs on


def trials() -> list[JudgedTrial]:
    return [
        judged(0, "COMPLETE", RISING, n_layers=1, units_0=64, optimizer="adam", learning_rate=0.05),
        judged(1, "FAIL", [1.0, math.nan], n_layers=1, units_0=8, optimizer="sgd",
               learning_rate=0.5),
        judged(2, "COMPLETE", FLAT, n_layers=2, units_0=16, units_1=8, optimizer="adam",
               learning_rate=0.001),
        judged(3, "RUNNING", [1.0], n_layers=1, units_0=32, optimizer="sgd", learning_rate=0.01),
        judged(4, "COMPLETE", [v * 1.01 for v in FLAT], n_layers=1, units_0=16,
               optimizer="sgd", learning_rate=0.003),
    ]


def test_leaderboard_ranks_complete_trials_by_best_val_loss() -> None:
    board = leaderboard(trials())
    assert list(board["trial"]) == [2, 4, 0, 1, 3]
    assert list(board["rank"].astype("object").fillna(0)) == [1, 2, 3, 0, 0]
    assert list(board["fit"]) == ["good_fit", "good_fit", "overfit", "diverged", "-"]
    columns = list(board.columns)
    # units_1 (only trial 2 has it) sits beside units_0, not after learning_rate
    assert columns[:9] == ["rank", "trial", "state", "fit", "n_layers", "units_0", "units_1",
                           "optimizer", "learning_rate"]
    assert {"best_val_loss", "best_epoch", "test_accuracy", "n_params", "seconds",
            "fit_reason"} <= set(columns)


def test_fit_counts_per_class_and_state_leave_running_trials_out() -> None:
    counts = fit_counts(trials())
    assert counts.loc["good_fit", "COMPLETE"] == 2
    assert counts.loc["diverged", "FAIL"] == 1
    assert list(counts["total"]) == [2, 1, 1]  # good_fit, overfit, diverged: 4 judged trials
    assert "underfit" not in counts.index  # a class no trial has is left out


def test_param_distribution_per_class() -> None:
    table = param_by_fit(trials())
    assert list(table.columns) == ["good_fit (n=2)", "overfit (n=1)", "diverged (n=1)"]
    assert table.loc["learning_rate", "good_fit (n=2)"] == "0.002 [0.001, 0.003]"  # median [range]
    assert table.loc["units_0", "overfit (n=1)"] == "64"
    assert table.loc["optimizer", "good_fit (n=2)"] == "adam 1, sgd 1"
    assert table.loc["units_1", "good_fit (n=2)"] == "8"  # only the trial that has the layer
    assert table.loc["units_1", "diverged (n=1)"] == ""
    text = fit_summary_text(trials())
    assert "good_fit (n=2)" in text and "learning_rate" in text


def test_overlay_writes_a_png_and_goes_logarithmic_only_for_wide_spans(tmp_path: Path) -> None:
    path = curves_overlay(trials(), 2, tmp_path / "overlay.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert wants_log_scale([0.3, 5.0]) and not wants_log_scale([0.3, 2.0])
    assert not wants_log_scale([]) and not wants_log_scale([-1.0, 100.0])

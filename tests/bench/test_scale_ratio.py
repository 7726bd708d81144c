"""The scale item's ratio target reads lockstep rounds pair by pair (bench.scale.paired)."""

from __future__ import annotations

import statistics

import pytest

from bench.scale import paired, targets


def _round(level: float, growth: float, size: int) -> dict[str, object]:
    own = [level * growth * (1 + 0.01 * k) for k in range(5)]
    return {"size": size, "own": own, "keras_in_study": own, "loop_code": own}


def test_pairs_are_the_same_trial_of_the_same_round_whatever_the_rounds_levels() -> None:
    # three rounds at machine speeds a third apart; the large side costs 5% more in every pair
    small = {"size": 50, "rounds": [_round(level, 1.0, 50) for level in (0.15, 0.20, 0.21)]}
    large = {"size": 1000, "rounds": [_round(level, 1.05, 1000) for level in (0.15, 0.20, 0.21)]}
    ratios = paired(small, large)
    assert len(ratios) == 15
    assert statistics.median(ratios) == pytest.approx(1.05)


def test_the_target_line_reads_the_pairs_not_the_pooled_medians() -> None:
    # pooled, the small side's trials sit mostly in the slow rounds and the large side's in the
    # fast ones: the pooled medians' ratio says 0.8x, the pairs say 1.2x
    small = {"size": 50, "fitscope_median": 0.2, "rounds": [_round(0.2, 1.0, 50)]}
    large = {"size": 1000, "fitscope_median": 0.16, "rounds": [_round(0.2, 1.2, 1000)]}
    alone = {"size": 1000, "bookkeeping_median": 0.05, "optuna_median": 0.04,
             "loop_code_median": 0.01}
    lines = targets({"storages": {"sqlite": [alone]}, "lockstep": {"sqlite": [small, large]}})
    assert lines[0].startswith("- sqlite, fitscope at 1000 <= 1.1x at 50: not met (1.200x")


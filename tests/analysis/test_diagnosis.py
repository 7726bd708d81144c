"""Tests for analysis.diagnosis on hand-built learning curves, one per fit class."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from analysis.diagnosis import (
    BUDGET,
    FIT_CLASSES,
    INTERRUPT,
    PRUNER,
    Diagnosis,
    baseline_loss,
    diagnose,
    stopped_by,
)
from experiments.thresholds import FitThresholds
from search.record import TrialRecord

Curves = tuple[list[float], list[float], float]  # loss, val_loss, baseline_loss


def _decay(n: int, start: float, floor: float, rate: float = 0.5) -> np.ndarray:
    """A converging loss curve: exponential decay from `start` towards `floor`."""
    return floor + (start - floor) * np.exp(-rate * np.arange(n))


def good_fit() -> Curves:
    """Converged curves, val a little above train, with ±0.5% alternating epoch noise."""
    loss = _decay(30, 2.3, 0.30)
    val = _decay(30, 2.3, 0.35) * (1 + 0.005 * (-1) ** np.arange(30))
    return list(loss), list(val), 2.3


def overfit_rise() -> Curves:
    """Val reaches its minimum at epoch 9, then rises 3% per epoch: 30% after 10 epochs."""
    val = list(np.linspace(1.0, 0.4, 10)) + [0.4 * (1 + 0.03 * j) for j in range(1, 11)]
    loss = list(np.linspace(0.95, 0.38, 10)) + list(np.linspace(0.37, 0.25, 10))
    return loss, val, 2.3


def overfit_gap() -> Curves:
    """Both curves converged, but train loss is a quarter of val loss."""
    return list(_decay(30, 2.0, 0.1)), list(_decay(30, 2.0, 0.4)), 2.3


def underfit_baseline() -> Curves:
    """Train loss settles at 0.95x the trivial predictor's loss."""
    return list(_decay(30, 1.2, 0.95)), list(_decay(30, 1.2, 0.97)), 1.0


def underfit_tail() -> Curves:
    """Both curves still losing 5% per epoch when training stopped."""
    loss = 2.0 * 0.95 ** np.arange(10)
    return list(loss), list(loss * 1.1), 2.3


def unstable() -> Curves:
    """Smooth train loss; val zig-zags by ~30% of its level and ends on its minimum."""
    loss = [0.85, 0.65, 0.55, 0.5, 0.47, 0.46, 0.45, 0.45, 0.44, 0.44]
    val = [0.9, 0.7, 0.8, 0.55, 0.7, 0.5, 0.68, 0.52, 0.66, 0.5]
    return loss, val, 1.1


CASES: dict[str, tuple[Callable[[], Curves], str]] = {
    "good_fit": (good_fit, "good_fit"),
    "overfit_rise": (overfit_rise, "overfit"),
    "overfit_gap": (overfit_gap, "overfit"),
    "underfit_baseline": (underfit_baseline, "underfit"),
    "underfit_tail": (underfit_tail, "underfit"),
    "unstable": (unstable, "unstable"),
}


@pytest.mark.parametrize("name", CASES)
def test_each_hand_built_run_gets_its_class(name: str) -> None:
    build, expected = CASES[name]
    d = diagnose(*build())
    assert d.fit == expected, d.reason
    assert d.fit in FIT_CLASSES


@pytest.mark.parametrize("name", CASES)
def test_regression_scale_gives_the_same_class(name: str) -> None:
    """MSE in the hundreds: scaling every loss and the baseline by 400 changes nothing."""
    build, expected = CASES[name]
    loss, val, base = build()
    d = diagnose([400 * x for x in loss], [400 * x for x in val], 400 * base)
    assert d.fit == expected, d.reason
    assert d.metrics()["gap_ratio"] == pytest.approx(diagnose(loss, val, base).gap_ratio)


def test_rules_fire_for_the_stated_reason() -> None:
    rise = diagnose(*overfit_rise())
    assert rise.val_rise == pytest.approx(0.3)
    assert rise.epochs_after_best == 10
    assert "30%" in rise.reason
    assert diagnose(*overfit_gap()).gap_ratio > 0.7
    assert diagnose(*underfit_baseline()).train_vs_baseline == pytest.approx(0.95, abs=1e-6)
    assert diagnose(*underfit_tail()).tail_slope < -0.04
    assert diagnose(*unstable()).roughness > 0.1


def test_nan_means_diverged_and_evidence_covers_the_epochs_before_it() -> None:
    d = diagnose([1.0, 0.8, math.nan, math.nan], [1.1, 0.9, 0.95, math.inf], 2.0)
    assert d.fit == "diverged"
    assert "epoch 2" in d.reason
    assert d.gap == pytest.approx(0.1)  # best epoch 1 of the finite prefix
    assert d.epochs_after_best == 2


def test_nan_from_the_first_epoch_does_not_crash() -> None:
    d = diagnose([math.nan, math.nan], [math.nan, math.nan], 1.0)
    assert d.fit == "diverged"
    assert math.isnan(d.gap) and math.isnan(d.gap_ratio) and math.isnan(d.train_vs_baseline)
    assert d.epochs_after_best == 2  # best = -1: no usable epoch at all


def test_exploding_loss_is_diverged() -> None:
    loss = [1.0, 0.8, 3.0, 12.0, 50.0]
    d = diagnose(loss, [1.1, 0.9, 3.5, 13.0, 55.0], 2.3)
    assert d.fit == "diverged"
    assert "50.0x" in d.reason
    assert diagnose(loss, loss, 2.3, FitThresholds(explode_factor=100.0)).fit != "diverged"


def test_evidence_numbers_on_a_small_hand_example() -> None:
    d = diagnose([1.0, 0.6, 0.5, 0.45], [1.1, 0.7, 0.8, 0.9], baseline_loss=0.9)
    assert d.gap == pytest.approx(0.1)  # best epoch 1: 0.7 - 0.6
    assert d.gap_ratio == pytest.approx(0.1 / 0.7)
    assert d.val_rise == pytest.approx(0.2 / 0.7)
    assert d.epochs_after_best == 2
    assert d.train_vs_baseline == pytest.approx(0.5)
    # least-squares slope of val over x = 0..3 is -0.05; over the mean level 0.875
    assert d.tail_slope == pytest.approx(-0.05 / 0.875)
    # diffs -0.4, +0.1, +0.1: one reversal out of two pairs, smaller leg 0.1, median 0.85
    assert d.roughness == pytest.approx(0.1 / 2 / 0.85)
    # val rose 29% but only 2 epochs after its minimum (< 3), and gap_ratio 0.14 < 0.3, so no
    # overfit; both tails still fall faster than 2% per epoch
    assert d.fit == "underfit"
    assert "still falling" in d.reason


def test_metrics_are_the_seven_numbers_as_floats() -> None:
    m = diagnose([1.0, 0.6, 0.5, 0.45], [1.1, 0.7, 0.8, 0.9], baseline_loss=0.9).metrics()
    assert list(m) == [
        "gap", "gap_ratio", "val_rise", "epochs_after_best", "train_vs_baseline", "tail_slope",
        "roughness",
    ]  # fmt: skip
    assert all(type(v) is float for v in m.values())
    assert m["epochs_after_best"] == 2.0


@pytest.mark.parametrize(
    ("name", "override", "expected"),
    [
        ("overfit_gap", {"gap_ratio": 0.9}, "good_fit"),
        ("overfit_rise", {"val_rise": 0.5}, "good_fit"),  # a 30% rise is now tolerated
        ("underfit_baseline", {"underfit_ratio": 0.99}, "good_fit"),
        ("underfit_tail", {"tail_slope": 0.1}, "good_fit"),
        ("unstable", {"roughness": 1.0}, "good_fit"),
        ("good_fit", {"gap_ratio": 0.1, "gap_vs_baseline": 0.01}, "overfit"),
    ],
)
def test_threshold_overrides_change_the_outcome(
    name: str, override: dict[str, Any], expected: str
) -> None:
    build, default = CASES[name]
    curves = build()
    assert diagnose(*curves).fit == default
    assert diagnose(*curves, thresholds=FitThresholds(**override)).fit == expected


def test_one_epoch() -> None:
    d = diagnose([0.5], [0.6], 1.0)
    assert d.fit == "good_fit"
    assert math.isnan(d.tail_slope)
    assert d.roughness == 0.0
    assert d.epochs_after_best == 0
    assert d.val_rise == 0.0


def test_two_epochs() -> None:
    d = diagnose([0.5, 0.45], [0.6, 0.55], 1.0)
    assert d.tail_slope == pytest.approx(-0.05 / 0.575)
    assert d.roughness == 0.0
    assert d.fit == "underfit"  # both still falling ~9% per epoch


def test_empty_curves_raise() -> None:
    with pytest.raises(ValueError, match="no epochs"):
        diagnose([], [], 1.0)


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="3 epochs but val_loss has 2"):
        diagnose([1.0, 0.9, 0.8], [1.0, 0.9], 1.0)


def test_two_dimensional_curves_raise() -> None:
    with pytest.raises(ValueError, match="1-D"):
        diagnose([[1.0, 0.9]], [[1.0, 0.9]], 1.0)  # type: ignore[list-item]


@pytest.mark.parametrize("base", [0.0, -1.0, math.nan])
def test_unusable_baseline_skips_the_baseline_rule(base: float) -> None:
    loss, val, _ = underfit_baseline()
    d = diagnose(loss, val, base)
    assert math.isnan(d.train_vs_baseline)
    assert d.fit == "good_fit"


def test_zero_loss_does_not_divide_by_zero() -> None:
    d = diagnose([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 1.0)
    assert d.fit == "good_fit"
    assert math.isnan(d.gap_ratio) and d.roughness == 0.0


def test_diagnosis_is_frozen() -> None:
    d = diagnose(*good_fit())
    assert isinstance(d, Diagnosis)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.fit = "overfit"  # type: ignore[misc]


def test_baseline_regression_is_the_variance() -> None:
    assert baseline_loss("regression", np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(1.25)
    # two outputs: Keras MSE averages over them, so does the baseline
    y = np.array([[1.0, 0.0], [3.0, 10.0]])
    assert baseline_loss("regression", y) == pytest.approx((1.0 + 25.0) / 2)


def test_baseline_binary_is_the_entropy_of_the_prior() -> None:
    assert baseline_loss("binary", np.array([0, 1, 0, 1])) == pytest.approx(math.log(2))
    p = 0.25
    expected = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert baseline_loss("binary", np.array([[0], [0], [1], [0]])) == pytest.approx(expected)
    constant = baseline_loss("binary", np.zeros(10))
    assert math.isfinite(constant) and 0 < constant < 1e-5  # clipped, not log(0)


def test_baseline_multiclass_is_the_entropy_of_the_prior() -> None:
    y = np.array([0, 1, 2] * 5)
    assert baseline_loss("multiclass", y) == pytest.approx(math.log(3))
    assert baseline_loss("multiclass", y, n_classes=4) == pytest.approx(math.log(3))
    assert baseline_loss("multiclass", np.eye(3)[y]) == pytest.approx(math.log(3))  # one-hot
    assert baseline_loss("multiclass", np.array([1, 1, 1]), n_classes=3) == pytest.approx(0.0)


def test_baseline_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        baseline_loss("ranking", np.array([1.0]))
    with pytest.raises(ValueError, match="at least one"):
        baseline_loss("regression", np.array([]))
    with pytest.raises(ValueError, match="0..1"):
        baseline_loss("multiclass", np.array([0, 1, 2]), n_classes=2)


def test_a_large_ratio_of_tiny_losses_is_not_overfit() -> None:
    # iris-like: val 0.14 vs train 0.06 is a 57% gap ratio but only 0.08 absolute, against a
    # trivial predictor's ln 3 = 1.1: the course would not call that overfitting
    decay = np.exp(-0.5 * np.arange(30))
    loss = list(0.06 + 0.94 * decay)
    val = list(0.14 + 0.86 * decay)
    assert diagnose(loss, val, baseline_loss=math.log(3)).fit == "good_fit"
    loose = FitThresholds(gap_vs_baseline=0.01)
    assert diagnose(loss, val, baseline_loss=math.log(3), thresholds=loose).fit == "overfit"


# --- issue 16 part 3: a run stopped from outside is judged on the evidence it has ----------
# Shown to fail without the fix: with the `stopped_by` branch of `_classify` removed, the
# pruned falling curve is "underfit" again; with `stopped_by` returning None, the records below
# give None.


def test_a_pruned_run_still_falling_is_stopped_early_not_underfit() -> None:
    curves = underfit_tail()  # both curves losing 5% per epoch when training stopped
    assert diagnose(*curves).fit == "underfit"  # early stopping or max_epochs ended it
    d = diagnose(*curves, stopped_by=PRUNER)
    assert d.fit == "stopped_early", d.reason
    assert d.reason.startswith("the pruner stopped it after 10 epochs")
    assert "stopped_early" in FIT_CLASSES


def test_a_pruned_run_high_but_still_falling_is_stopped_early() -> None:
    # pruned after 4 epochs while still above the trivial predictor and falling ~9% per epoch
    loss, val = [1.3, 1.15, 1.05, 0.96], [1.32, 1.2, 1.1, 1.0]
    assert diagnose(loss, val, 1.1).fit == "underfit"
    assert diagnose(loss, val, 1.1, stopped_by=PRUNER).fit == "stopped_early"


@pytest.mark.parametrize("name", ["overfit_rise", "overfit_gap", "unstable"])
def test_a_pruned_run_still_shows_what_its_curves_show(name: str) -> None:
    build, expected = CASES[name]
    assert diagnose(*build(), stopped_by=PRUNER).fit == expected


def test_a_pruned_run_that_diverged_is_diverged() -> None:
    d = diagnose([1.0, 0.8, math.nan], [1.1, 0.9, math.nan], 2.0, stopped_by=PRUNER)
    assert d.fit == "diverged"


def test_a_pruned_run_no_longer_falling_keeps_the_underfit_rules() -> None:
    # flat near the trivial predictor: it had stopped improving, so that is no lack of epochs
    d = diagnose(*underfit_baseline(), stopped_by=PRUNER)
    assert d.fit == "underfit", d.reason
    # pruned after one epoch: no slope, no evidence of improving either way
    assert diagnose([1.0], [1.05], 1.1, stopped_by=PRUNER).fit == "underfit"


def _record(state: str, epochs: int = 4, **attrs: Any) -> TrialRecord:
    return TrialRecord(
        number=0, state=state, params={}, settings=attrs.get("settings", {}),
        history={"loss": [1.0] * epochs, "val_loss": [1.0] * epochs}, best_epoch=0,
        best_val_loss=1.0, epochs_trained=epochs, n_params=None, train_seconds=None, test={},
        fail_reason=attrs.get("fail_reason"))


def test_what_stopped_a_trial_is_read_from_its_record() -> None:
    assert stopped_by(_record("PRUNED")) == PRUNER
    assert stopped_by(_record("FAIL", fail_reason="interrupted (SIGTERM)")) == INTERRUPT
    assert stopped_by(_record("FAIL", fail_reason="diverged: loss became NaN")) is None
    assert stopped_by(_record("COMPLETE")) is None  # early stopping or max_epochs ended it
    # a Hyperband round that trained all its epochs; one that early stopping cut is its own
    hyperband = {"max_epochs": 4, "kt_epochs": 4}
    assert stopped_by(_record("COMPLETE", 4, settings=hyperband)) == BUDGET
    assert stopped_by(_record("COMPLETE", 3, settings=hyperband)) is None

"""Classify one training run as good_fit, overfit, underfit, diverged, unstable or stopped_early.

Pure numpy, so it can be unit-tested on hand-made curves and called from any callback. Every
threshold is relative (a ratio or a fraction of the loss level per epoch), so the same defaults
work for cross-entropy around 0.3 and for an MSE in the hundreds.

Example:
    >>> from analysis.diagnosis import diagnose
    >>> loss = [0.9, 0.55, 0.45, 0.42, 0.41, 0.405, 0.40, 0.40]
    >>> val_loss = [0.95, 0.6, 0.5, 0.47, 0.46, 0.455, 0.45, 0.45]
    >>> d = diagnose(loss, val_loss, baseline_loss=1.1)
    >>> d.fit, round(d.gap_ratio, 3), d.epochs_after_best
    ('good_fit', 0.111, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.thresholds import FitThresholds

if TYPE_CHECKING:
    from search.record import TrialRecord

FIT_CLASSES = ("good_fit", "overfit", "underfit", "diverged", "unstable", "stopped_early")
# What ended a trial before its own stopping rule (early stopping, max_epochs) could: the
# phrase goes into the reason of a `stopped_early` verdict.
PRUNER, BUDGET, INTERRUPT = "the pruner", "Hyperband's epoch budget", "an interruption"
_EPS = 1e-7  # Keras clips predicted probabilities with this epsilon; the baseline does the same


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one run and the numbers behind it (see `diagnose` for each definition)."""

    fit: str
    reason: str
    gap: float
    gap_ratio: float
    val_rise: float
    epochs_after_best: int
    train_vs_baseline: float
    tail_slope: float
    roughness: float

    def metrics(self) -> dict[str, float]:
        """The seven evidence numbers as floats (NaN where undefined), ready to log."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)[2:]}  # after fit, reason


def _ratio(num: float, den: float) -> float:
    """``num / den``, or NaN where the denominator cannot scale anything (<= 0 or not finite)."""
    return float(num / den) if math.isfinite(den) and den > 0 else math.nan


def _tail_slope(curve: np.ndarray, window: int) -> float:
    """Least-squares slope of the last `window` values over their mean: level fraction per epoch.

    A fitted line rather than two endpoints, so one noisy epoch cannot decide it. NaN with
    fewer than two values.
    """
    tail = curve[-window:]
    if len(tail) < 2:
        return math.nan
    x = np.arange(len(tail)) - (len(tail) - 1) / 2
    return _ratio(float(x @ (tail - tail.mean()) / (x @ x)), float(tail.mean()))


def _roughness(curve: np.ndarray) -> float:
    """``sum(min(|d[i-1]|, |d[i]|) where d[i-1] * d[i] < 0) / (n - 2) / median(curve)``.

    With ``d = diff(curve)``: the fraction of sign changes of the first difference times the
    mean size of those reversals (the smaller leg, so a big but monotone early drop adds
    nothing), relative to the median level (the mean would be inflated by the first epochs).
    0.0 with fewer than three values: a reversal needs two steps.
    """
    d = np.diff(curve)
    reversal = np.where(d[:-1] * d[1:] < 0, np.minimum(np.abs(d[:-1]), np.abs(d[1:])), 0.0)
    if not reversal.any():
        return 0.0
    return _ratio(float(reversal.mean()), float(np.median(curve)))


def diagnose(
    loss: Sequence[float],
    val_loss: Sequence[float],
    baseline_loss: float,
    thresholds: FitThresholds | None = None,
    stopped_by: str | None = None,
) -> Diagnosis:
    """Classify a run from its per-epoch train and validation losses; first matching rule wins.

    1. ``diverged``: a NaN/inf in either curve, or max train loss > explode_factor x the first.
    2. ``overfit``: val_rise > val_rise with epochs_after_best >= min_epochs_after_best, or
       gap_ratio > gap_ratio and gap > gap_vs_baseline x baseline_loss.
    3. ``underfit``: train_vs_baseline > underfit_ratio, or both curves' tail slopes < -tail_slope.
    4. ``unstable``: roughness > roughness.  5. Otherwise ``good_fit``.

    A run that something else stopped (`stopped_by`: the pruner, Hyperband's epoch budget, an
    interruption) has not shown what more epochs would do, so a lack of capacity cannot be read
    from it. After rules 1 and 2 (its curves can show those), it is ``unstable`` when rule 4
    fires, else ``stopped_early`` when it was still improving: both tail slopes below
    -tail_slope, the "still falling" of rule 3. Only then does rule 3 apply (a stopped run
    near the trivial predictor's loss that was no longer falling fast is still underfit), and 5.

    Evidence: best = argmin(val_loss); gap = val - train at best; gap_ratio = gap / val[best];
    val_rise = (val[-1] - val[best]) / val[best]; epochs_after_best = len - 1 - best;
    train_vs_baseline = loss[-1] / baseline_loss (NaN if baseline_loss <= 0, skipping that rule);
    tail_slope and roughness of val_loss as in `_tail_slope` / `_roughness`. After a NaN/inf
    the evidence covers only the epochs before it (best = -1 and NaNs when there are none).
    A NaN evidence number never fires a rule.

    Raises:
        ValueError: if a curve is empty, not one-dimensional, or the two lengths differ.
    """
    th = thresholds or FitThresholds()
    train, val = np.asarray(loss, dtype=float), np.asarray(val_loss, dtype=float)
    if train.ndim != 1 or val.ndim != 1:
        raise ValueError(f"loss curves must be 1-D, got shapes {train.shape} and {val.shape}")
    if len(train) == 0 or len(val) == 0:
        raise ValueError("cannot diagnose a run with no epochs: loss or val_loss is empty")
    if len(train) != len(val):
        raise ValueError(f"loss has {len(train)} epochs but val_loss has {len(val)}")
    finite = np.isfinite(train) & np.isfinite(val)
    n_ok = len(train) if finite.all() else int(np.argmin(finite))
    t, v = train[:n_ok], val[:n_ok]
    best = int(np.argmin(v)) if n_ok else -1
    gap = float(v[best] - t[best]) if n_ok else math.nan
    e: dict[str, Any] = {  # the evidence, in Diagnosis field order
        "gap": gap,
        "gap_ratio": _ratio(gap, v[best]) if n_ok else math.nan,
        "val_rise": _ratio(v[-1] - v[best], v[best]) if n_ok else math.nan,
        "epochs_after_best": len(val) - 1 - best,
        "train_vs_baseline": _ratio(t[-1], baseline_loss) if n_ok else math.nan,
        "tail_slope": _tail_slope(v, th.tail_window),
        "roughness": _roughness(v),
    }
    fit, reason = _classify(t, len(train), e, th, baseline_loss, stopped_by)
    return Diagnosis(fit=fit, reason=reason, **e)


def _classify(
    t: np.ndarray,
    n: int,
    e: dict[str, Any],
    th: FitThresholds,
    baseline: float,
    stopped_by: str | None = None,
) -> tuple[str, str]:
    """The first rule of `diagnose` that fires on evidence `e`, and a sentence with its numbers.

    `t` is the finite prefix of the train loss and `n` the full number of epochs.
    """
    if len(t) < n:
        return "diverged", f"loss or val_loss is NaN/inf from epoch {len(t)}"
    if t[0] > 0 and t.max() > th.explode_factor * t[0]:
        limit = th.explode_factor
        return "diverged", f"train loss rose to {t.max() / t[0]:.1f}x epoch 0 (limit {limit:g}x)"
    rise, after = e["val_rise"], e["epochs_after_best"]
    if rise > th.val_rise and after >= th.min_epochs_after_best:
        limits = f"limit {th.val_rise:.0%} after {th.min_epochs_after_best}"
        return "overfit", f"val_loss ended {rise:.0%} over its minimum {after} epochs on ({limits})"
    floor = th.gap_vs_baseline * baseline
    big_enough = not floor > 0 or e["gap"] > floor  # no usable baseline: the ratio decides alone
    if e["gap_ratio"] > th.gap_ratio and big_enough:
        ratio, limit = e["gap_ratio"], th.gap_ratio
        return "overfit", f"val - train at the best epoch is {ratio:.0%} of val (limit {limit:.0%})"
    slopes = (_tail_slope(t, th.tail_window), e["tail_slope"])
    if stopped_by is not None:
        if e["roughness"] > th.roughness:
            return "unstable", f"val_loss roughness {e['roughness']:.3f} (limit {th.roughness:g})"
        if max(slopes) < -th.tail_slope:  # NaN (one epoch) compares False: no evidence
            shown = ", ".join(f"{s:.1%}" for s in slopes)
            return "stopped_early", (
                f"{stopped_by} stopped it after {n} epochs with train, val still falling "
                f"{shown}/epoch (limit -{th.tail_slope:.0%})")
    if e["train_vs_baseline"] > th.underfit_ratio:
        ratio, limit = e["train_vs_baseline"], th.underfit_ratio
        return "underfit", f"train loss is {ratio:.0%} of a trivial predictor's (limit {limit:.0%})"
    if max(slopes) < -th.tail_slope:  # NaN compares False, so a missing slope never fires
        shown = ", ".join(f"{s:.1%}" for s in slopes)
        return "underfit", f"train, val still falling {shown}/epoch (limit -{th.tail_slope:.0%})"
    if e["roughness"] > th.roughness:
        return "unstable", f"val_loss roughness {e['roughness']:.3f} (limit {th.roughness:g})"
    numbers = f"gap {e['gap_ratio']:.0%}, rise {e['val_rise']:.0%}, rough {e['roughness']:.3f}"
    return "good_fit", f"no rule fired ({numbers})"


def baseline_loss(task: str, y_train: np.ndarray, n_classes: int | None = None) -> float:
    """Loss of a trivial predictor on the training targets, the yardstick for underfitting.

    regression: MSE of predicting the training mean (the variance, averaged over outputs);
    binary: cross-entropy of predicting the positive-class prior; multiclass: categorical
    cross-entropy of predicting the class prior, from integer labels (one-hot rows accepted).
    Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does, so a constant target is finite.

    Example:
        >>> round(baseline_loss("binary", np.array([0, 1, 1, 0])), 4)  # ln 2
        0.6931

    Raises:
        ValueError: for an unknown task, empty targets, or labels outside ``range(n_classes)``.
    """
    y = np.atleast_1d(np.asarray(y_train))
    if y.size == 0:
        raise ValueError("baseline_loss needs at least one training target")
    if task == "regression":
        return float(np.mean(np.var(y.reshape(len(y), -1).astype(float), axis=0)))
    if task == "binary":
        p = float(np.clip(np.mean(y), _EPS, 1 - _EPS))
        return float(-(p * math.log(p) + (1 - p) * math.log(1 - p)))
    if task == "multiclass":
        if y.ndim == 2 and y.shape[1] > 1:
            prior = y.astype(float).mean(axis=0)
        else:
            labels = y.ravel().astype(int)
            k = int(labels.max()) + 1 if n_classes is None else n_classes
            if labels.min() < 0 or labels.max() >= k:
                bad = f"{labels.min()}..{labels.max()}"
                raise ValueError(f"labels must lie in 0..{k - 1}, got {bad}")
            prior = np.bincount(labels, minlength=k) / len(labels)
        return float(-np.sum(prior * np.log(np.clip(prior, _EPS, 1.0))))
    raise ValueError(f"unknown task {task!r}; expected 'regression', 'binary' or 'multiclass'")


def diagnose_record(
    record: TrialRecord, baseline: float | None, thresholds: Mapping[str, Any] | FitThresholds
) -> Diagnosis | None:
    """The fit diagnosis of a trial, or None when it has no curves to judge.

    `thresholds` is the spec's `diagnosis` block, as a model or as the dict stored with a study.
    A trial that `stopped_by` names is judged as `diagnose` says for runs stopped from outside.
    """
    loss, val = record.history.get("loss"), record.history.get("val_loss")
    if not loss or not val or len(loss) != len(val):
        return None
    if not isinstance(thresholds, FitThresholds):
        thresholds = FitThresholds(**thresholds)
    base = baseline if baseline else float("nan")
    return diagnose(loss, val, base, thresholds, stopped_by=stopped_by(record))


def stopped_by(record: TrialRecord) -> str | None:
    """What stopped a trial before early stopping or max_epochs could, or None.

    PRUNED: the pruner. A KerasTuner Hyperband round (`kt_epochs` in its settings) that trained
    every epoch of its round: Hyperband's epoch budget, which stops every round, the last too.
    FAIL with an `interrupted (...)` reason: Ctrl-C or SIGTERM. A trial that early stopping
    ended, or that used its max_epochs, stopped by its own rule: None.
    """
    if record.state == "PRUNED":
        return PRUNER
    if record.state == "FAIL" and (record.fail_reason or "").startswith("interrupted"):
        return INTERRUPT
    epochs = record.settings.get("max_epochs")
    if "kt_epochs" not in record.settings or epochs is None:
        return None
    return BUDGET if record.epochs_trained >= int(epochs) else None

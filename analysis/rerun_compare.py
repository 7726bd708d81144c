"""Comparing a rerun with the original run: per-epoch curves, best epoch, test metrics.

Pure functions on plain values (no MLflow, no Keras), so the verdict logic is tested on its own.

Example:
    >>> a = Outcome("COMPLETE", {"val_loss": [0.9, 0.5]}, 1, {"test_loss": 0.4})
    >>> compare(a, a).verdict
    'identical'
    >>> b = Outcome("COMPLETE", {"val_loss": [0.9, 0.5000001]}, 1, {"test_loss": 0.4})
    >>> compare(a, b).verdict
    'within'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

TOLERANCE = 1e-6  # relative and absolute: float32 training noise is far larger when it exists
Value = float | int | str | None
Verdict = Literal["identical", "within", "different"]


@dataclass(frozen=True)
class Outcome:
    """What one run produced, in the terms a comparison uses."""

    state: str  # COMPLETE | PRUNED | FAIL
    curves: dict[str, list[float]]  # loss, val_loss and the task metric, one value per epoch
    best_epoch: int | None
    test: dict[str, float] = field(default_factory=dict)  # test_loss, test_accuracy, ...


@dataclass(frozen=True)
class Difference:
    """One compared quantity that is not bitwise equal."""

    what: str  # "val_loss", "best_epoch", "test_accuracy", "epochs", "state"
    epoch: int | None  # curves: the first epoch that differs
    original: Value
    rerun: Value
    largest: float  # |difference| (curves: the largest over all epochs); inf when incomparable
    within: bool  # |difference| <= TOLERANCE (relative or absolute)


@dataclass(frozen=True)
class Comparison:
    verdict: Verdict
    differences: tuple[Difference, ...]
    compared: tuple[str, ...]  # what was compared, for the verdict line
    notes: tuple[str, ...] = ()


def compare(original: Outcome, rerun: Outcome, tolerance: float = TOLERANCE) -> Comparison:
    """Compare every curve both runs have, the best epoch and (for complete runs) test metrics.

    A pruned original has curves only up to its pruning epoch and no test metrics: the rerun
    trains exactly those epochs, and the test metrics are not compared.
    """
    differences: list[Difference] = []
    compared: list[str] = []
    notes: list[str] = []
    if original.state != rerun.state and not _pruned_replay(original, rerun):
        differences.append(Difference("state", None, original.state, rerun.state, math.inf, False))
    for name in sorted(set(original.curves) | set(rerun.curves), key=_curve_order):
        first, second = original.curves.get(name), rerun.curves.get(name)
        compared.append(name)
        if first is None or second is None:
            differences.append(Difference(name, None, _length(first), _length(second), math.inf,
                                          False))
            continue
        differences.extend(_curve_difference(name, first, second, tolerance))
    compared.append("best_epoch")
    if original.best_epoch != rerun.best_epoch:
        differences.append(Difference("best_epoch", None, original.best_epoch, rerun.best_epoch,
                                      math.inf, False))
    if original.state == "COMPLETE":
        for name in sorted(set(original.test) | set(rerun.test)):
            compared.append(name)
            difference = _value_difference(name, original.test.get(name), rerun.test.get(name),
                                           tolerance)
            if difference is not None:
                differences.append(difference)
    else:
        epochs = len(original.curves.get("val_loss", []))
        ended = {"PRUNED": "pruned", "FAIL": "failed"}.get(original.state, original.state.lower())
        notes.append(f"the original was {ended} after {epochs} epochs: its curves are compared "
                     "over those epochs, test metrics are not")
    if not differences:
        verdict: Verdict = "identical"
    elif all(d.within for d in differences):
        verdict = "within"
    else:
        verdict = "different"
    return Comparison(verdict, tuple(differences), tuple(compared), tuple(notes))


def verdict_line(comparison: Comparison, tolerance: float = TOLERANCE) -> str:
    """`identical (bitwise): ...`, `equal within 1e-06 ...` or `different: ...`."""
    what = ", ".join(comparison.compared)
    if comparison.verdict == "identical":
        return f"identical (bitwise): {what}"
    if comparison.verdict == "within":
        worst = max(comparison.differences, key=lambda d: d.largest)
        return (f"equal within {tolerance:g}: largest difference {worst.largest:.3g} "
                f"({worst.what}); compared {what}")
    beyond = [d for d in comparison.differences if not d.within]
    return f"different: {len(beyond)} of {len(comparison.compared)} quantities beyond {tolerance:g}"


def difference_table(differences: tuple[Difference, ...]) -> str:
    """A fixed-width table of the differences, one row each."""
    rows = [("what", "epoch", "original", "rerun", "|difference|", "")]
    for d in differences:
        rows.append((
            d.what,
            "" if d.epoch is None else str(d.epoch),
            _text(d.original),
            _text(d.rerun),
            "-" if math.isinf(d.largest) else f"{d.largest:.3g}",
            "within tolerance" if d.within else "",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    return "\n".join(f"  {line}".rstrip() for line in lines)


def _pruned_replay(original: Outcome, rerun: Outcome) -> bool:
    # A pruned original's replay trains the same epochs to the end: COMPLETE is its success.
    return original.state == "PRUNED" and rerun.state == "COMPLETE"


def _curve_difference(
    name: str, first: list[float], second: list[float], tolerance: float
) -> list[Difference]:
    out: list[Difference] = []
    if len(first) != len(second):
        out.append(Difference(f"{name} epochs", None, len(first), len(second), math.inf, False))
    pairs = list(zip(first, second, strict=False))
    unequal = [i for i, (a, b) in enumerate(pairs) if not _same(a, b)]
    if unequal:
        gaps = [_gap(a, b) for a, b in pairs]
        within = all(_close(a, b, tolerance) for a, b in pairs)
        i = unequal[0]
        out.append(Difference(name, i, first[i], second[i], max(gaps), within))
    return out


def _value_difference(
    name: str, first: float | None, second: float | None, tolerance: float
) -> Difference | None:
    if first is None or second is None:
        return Difference(name, None, first, second, math.inf, False)
    if _same(first, second):
        return None
    return Difference(name, None, first, second, _gap(first, second),
                      _close(first, second, tolerance))


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _close(a: float, b: float, tolerance: float) -> bool:
    return _same(a, b) or math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def _gap(a: float, b: float) -> float:
    return 0.0 if _same(a, b) else abs(a - b) if math.isfinite(a - b) else math.inf


def _length(curve: list[float] | None) -> str:
    return "absent" if curve is None else f"{len(curve)} epochs"


def _curve_order(name: str) -> tuple[int, str]:
    # loss and val_loss first: the curves the objective is made of
    return ({"loss": 0, "val_loss": 1}.get(name, 2), name)


def _text(value: Value) -> str:
    if value is None:
        return "absent"
    if isinstance(value, float):
        return repr(value)  # every digit: the point is to show bitwise differences
    return str(value)


def environment_differences(
    original: dict[str, str], current: dict[str, str]
) -> list[tuple[str, str, str]]:
    """(tag, original, now) for every fingerprint tag that differs; absent tags read "absent".

    Example:
        >>> environment_differences({"env.keras_version": "3.14"}, {"env.keras_version": "3.15"})
        [('env.keras_version', '3.14', '3.15')]
    """
    return [
        (name, original.get(name, "absent"), current.get(name, "absent"))
        for name in sorted(set(original) | set(current))
        if original.get(name) != current.get(name)
    ]


def report(
    comparison: Comparison,
    env_changes: list[tuple[str, str, str]],
    hints: Sequence[str] = (),
    tolerance: float = TOLERANCE,
) -> str:
    """The verdict, the differences table and the environment changes, as printed."""
    lines = [f"verdict: {verdict_line(comparison, tolerance)}"]
    lines += [f"  note: {note}" for note in comparison.notes]
    if comparison.differences:
        lines.append(difference_table(comparison.differences))
    if env_changes:
        header = ("environment differences that may explain them:"
                  if comparison.verdict != "identical"
                  else "environment differences (harmless here):")
        lines.append(header)
        width = max(len(name) for name, _, _ in env_changes)
        lines += [f"  {name:<{width}}  {was} -> {now}" for name, was, now in env_changes]
    elif comparison.verdict != "identical":
        lines.append("no environment difference recorded (same libraries, code, data and machine)")
    lines += [f"  hint: {hint}" for hint in hints] if comparison.verdict != "identical" else []
    return "\n".join(lines)

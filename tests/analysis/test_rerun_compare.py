"""The rerun verdict: identical, equal within 1e-6, or a table of differences."""

from __future__ import annotations

import math

from analysis.rerun_compare import (
    Outcome,
    compare,
    difference_table,
    environment_differences,
    report,
    verdict_line,
)

CURVES = {"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.7, 0.65]}
TEST = {"test_loss": 0.6, "test_accuracy": 0.9}


def _outcome(**changes: object) -> Outcome:
    fields: dict[str, object] = {"state": "COMPLETE", "curves": CURVES, "best_epoch": 2,
                                 "test": TEST}
    fields.update(changes)
    return Outcome(**fields)  # type: ignore[arg-type]


def test_bitwise_equal_runs_are_identical() -> None:
    comparison = compare(_outcome(), _outcome())
    assert comparison.verdict == "identical"
    assert comparison.differences == ()
    line = verdict_line(comparison)
    assert line.startswith("identical (bitwise)")
    for name in ("loss", "val_loss", "best_epoch", "test_accuracy"):
        assert name in line


def test_nan_equals_nan_for_a_diverged_curve() -> None:
    curves = {"loss": [1.0, math.nan], "val_loss": [1.0, math.nan]}
    diverged = _outcome(state="FAIL", curves=curves, best_epoch=0, test={})
    assert compare(diverged, diverged).verdict == "identical"


def test_tiny_differences_are_equal_within_tolerance() -> None:
    nudged = {"loss": CURVES["loss"], "val_loss": [1.1, 0.7 + 3e-8, 0.65]}
    nudged_test = {**TEST, "test_loss": 0.6 + 1e-9}
    comparison = compare(_outcome(), _outcome(curves=nudged, test=nudged_test))
    assert comparison.verdict == "within"
    assert {d.what for d in comparison.differences} == {"val_loss", "test_loss"}
    assert verdict_line(comparison).startswith("equal within 1e-06")


def test_real_differences_are_tabled_with_the_first_epoch_that_differs() -> None:
    changed = {"loss": CURVES["loss"], "val_loss": [1.1, 0.7, 0.64, 0.66]}
    comparison = compare(_outcome(), _outcome(curves=changed, best_epoch=3,
                                              test={**TEST, "test_accuracy": 0.8}))
    assert comparison.verdict == "different"
    by_name = {d.what: d for d in comparison.differences}
    assert by_name["val_loss"].epoch == 2
    assert by_name["val_loss"].largest == abs(0.65 - 0.64)
    assert by_name["val_loss epochs"].original == 3 and by_name["val_loss epochs"].rerun == 4
    assert by_name["best_epoch"].original == 2 and by_name["best_epoch"].rerun == 3
    assert not by_name["test_accuracy"].within
    table = difference_table(comparison.differences)
    assert "0.65" in table and "0.64" in table and "test_accuracy" in table
    assert verdict_line(comparison).startswith("different: 4 of")


def test_a_pruned_original_compares_its_epochs_but_no_test_metrics() -> None:
    pruned = _outcome(state="PRUNED", test={})
    replay = _outcome(test=TEST)  # the replay ran the same epochs to the end: COMPLETE
    comparison = compare(pruned, replay)
    assert comparison.verdict == "identical"
    assert "test_accuracy" not in comparison.compared
    assert any("pruned after 3 epochs" in note for note in comparison.notes)


def test_a_curve_missing_on_one_side_is_a_difference() -> None:
    comparison = compare(_outcome(), _outcome(curves={"loss": CURVES["loss"]}))
    assert comparison.verdict == "different"
    (missing,) = comparison.differences
    assert missing.what == "val_loss" and missing.rerun == "absent"


def test_environment_differences_and_the_report_name_them() -> None:
    changes = environment_differences(
        {"env.tensorflow_version": "2.20.0", "git_commit": "abc", "data_sha256": "1"},
        {"env.tensorflow_version": "2.21.0", "git_commit": "abc", "data_sha256": "1",
         "env.gpu": "none"},
    )
    assert changes == [("env.gpu", "absent", "none"),
                       ("env.tensorflow_version", "2.20.0", "2.21.0")]
    changed = {"loss": CURVES["loss"], "val_loss": [1.1, 0.8, 0.65]}
    text = report(compare(_outcome(), _outcome(curves=changed)), changes, ["a hint"])
    assert "environment differences that may explain them" in text
    assert "env.tensorflow_version  2.20.0 -> 2.21.0" in text
    assert "hint: a hint" in text

"""Tests for analysis.confirm: seed statistics, the noise rule and the verdict, on hand-made
outcomes. Shown failing with `within_noise` comparing to max(std) instead of the sum, and with
`ranked` sorting on the search val loss instead of the mean."""

from __future__ import annotations

import math

import pytest

from analysis.confirm import (
    ConfigResult,
    SeedOutcome,
    from_json,
    stats,
    table_rows,
    table_text,
    to_json,
    verdict,
    within_noise,
)


def config(trial: int, losses: list[float | None], search: float = 0.3) -> ConfigResult:
    return ConfigResult(trial, f"run{trial}", search, [
        SeedOutcome(i, loss, {"val_accuracy": 0.9, "test_accuracy": 0.8 + i / 100},
                    "good_fit" if loss is not None else "diverged")
        for i, loss in enumerate(losses)])


def test_stats_are_mean_and_sample_std_of_the_finite_values() -> None:
    s = stats([0.28, 0.29, 0.30, None, math.nan])
    assert (s.mean, s.n) == (pytest.approx(0.29), 3)
    assert s.std == pytest.approx(0.01)
    assert stats([0.5]).std == 0.0
    assert stats([]).n == 0 and math.isnan(stats([]).mean)


def test_within_noise_when_the_mean_plus_minus_std_intervals_overlap() -> None:
    a, b = stats([0.2794, 0.2834, 0.2874]), stats([0.2849, 0.2899, 0.2949])  # ± 0.004, ± 0.005
    assert within_noise(a, b)  # 0.0065 apart, stds sum to 0.009
    far = stats([0.3094, 0.3134, 0.3174])  # 0.03 apart
    assert not within_noise(a, far)
    assert not within_noise(stats([0.3]), stats([0.31]))  # one seed each: no spread
    assert not within_noise(a, stats([]))


def test_the_verdict_ranks_on_the_mean_not_on_the_search() -> None:
    lucky = config(16, [0.33, 0.34, 0.35], search=0.27)  # the study's winner, a lucky seed
    steady = config(19, [0.29, 0.30, 0.31], search=0.28)
    v = verdict([lucky, steady], study_winner=16)
    assert [r.trial_number for r in v.ranking] == [19, 16]
    assert not v.winner_kept and v.confirmed.trial_number == 19
    assert v.lines[0] == ("the study's winner, trial 16, is no longer first on the mean: "
                          "trial 19 is")
    assert v.lines[1] == ("trial 19 and trial 16 differ by more than their noise: "
                          "0.3000 ± 0.01 vs 0.3400 ± 0.01")
    kept = verdict([steady, lucky], study_winner=19)
    assert kept.winner_kept and kept.lines[0].endswith("is still first on the mean")


def test_a_diverged_seed_counts_in_the_fits_not_in_the_mean() -> None:
    c = config(3, [0.3, None, 0.32])
    assert c.stats("best_val_loss").n == 2
    assert c.fits() == "good_fit 2, diverged 1"
    row = table_rows([c])[0]
    assert row["seeds"] == 3 and row["best_val_loss"] == "0.3100 ± 0.014"
    assert list(row) == ["rank", "trial", "seeds", "search val_loss", "best_val_loss",
                         "val_accuracy", "test_accuracy", "fit"]
    assert table_text([c]).splitlines()[0].startswith("rank  trial  seeds")


def test_results_survive_the_study_attr_round_trip() -> None:
    results = [config(1, [0.3, None]), config(2, [0.4, 0.41])]
    back = from_json(to_json(results))
    assert back == results
    assert from_json({"not": "a list"}) == [] and from_json(None) == []


def test_no_configuration_is_an_error() -> None:
    with pytest.raises(ValueError, match="no configuration"):
        verdict([], study_winner=0)

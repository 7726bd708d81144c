"""The report of a large study stays a page a person can use: a leaderboard cut to its top rows
with every trial in the CSV beside it, and line views drawn for the best trials only (issue 20)."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna

from reporting import optuna_views
from reporting.report import LEADERBOARD_ROWS, build_report

TRIALS = optuna_views.MAX_LINES + 40


def large_study() -> optuna.Study:
    """TRIALS complete trials with five-epoch curves, as a long xor study leaves them."""
    study = optuna.create_study(study_name="large")
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    units = optuna.distributions.IntDistribution(2, 64)
    trials = []
    for number in range(TRIALS):
        val = [0.9 - 0.05 * epoch - 0.0005 * (number % 97) for epoch in range(5)]
        trials.append(optuna.trial.create_trial(
            params={"learning_rate": 10 ** (-4 + 3 * (number % 13) / 13), "units": 2 + number % 60},
            distributions={"learning_rate": lr, "units": units},
            value=min(val),
            user_attrs={"history": {"loss": [v - 0.02 for v in val], "val_loss": val},
                        "params": {"learning_rate": 1e-3, "units": 8}},
            intermediate_values=dict(enumerate(val)),
        ))
    study.add_trials(trials)
    return study


def test_a_large_study_gets_a_usable_report(tmp_path: Path) -> None:
    path = build_report(large_study(), tmp_path)
    html = path.read_text(encoding="utf-8")
    leaderboard = html.split('id="leaderboard"')[1].split('id="fit-summary"')[0]
    assert leaderboard.count("<tr") == LEADERBOARD_ROWS + 1  # the header row and the top rows
    assert f"the first {LEADERBOARD_ROWS} of {TRIALS} trials are shown here" in leaderboard
    with (tmp_path / "leaderboard.csv").open(encoding="utf-8") as rows:
        assert len(list(csv.DictReader(rows))) == TRIALS
    best = f"the {optuna_views.MAX_LINES} best of {TRIALS} complete trials"
    for view in ("parallel_coordinate", "intermediate_values"):
        section = (tmp_path / f"optuna_{view}.html").read_text(encoding="utf-8")
        assert section  # drawn, from the best trials
    assert html.count(best) == 2
    assert (tmp_path / "curves_overlay.png").stat().st_size > 10_000


def test_a_small_study_is_drawn_whole(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="small")
    study.add_trials(large_study().get_trials(deepcopy=False)[:30])
    html = build_report(study, tmp_path).read_text(encoding="utf-8")
    assert "are shown here" not in html and "best of" not in html

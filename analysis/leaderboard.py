"""The leaderboard: one row per trial, ranked by best val loss, with its fit and every param.

Example:
    >>> import optuna
    >>> from analysis.judged import judged_trials
    >>> leaderboard(judged_trials(optuna.create_study())).empty
    True
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.judged import JudgedTrial

if TYPE_CHECKING:
    import pandas as pd

FIRST = ["rank", "trial", "state", "fit"]
LAST = ["best_val_loss", "best_epoch", "epochs_trained"]
TAIL = ["n_params", "seconds", "fit_reason"]


def leaderboard(
    trials: Sequence[JudgedTrial], front: Collection[int] | None = None
) -> pd.DataFrame:
    """A DataFrame with one row per trial.

    Columns: rank (COMPLETE trials only, 1 = lowest best val loss), trial, state, fit, every
    parameter any trial has (conditional ones empty where absent), best_val_loss, best_epoch
    (0-based, as logged in MLflow), epochs_trained, the test metrics, n_params, seconds (wall
    time of the trial) and fit_reason. Complete trials come first by best val loss, then the
    others by best val loss where they have one, then by number.

    `front` (a multi-objective study's Pareto front, by trial number) adds the column pareto
    after fit: True on the front, False for other complete trials, empty for the rest; and
    train_seconds (what that objective measures) before seconds.
    """
    import pandas as pd

    rows = [_row(t) for t in sorted(trials, key=_order)]
    rank = 0
    for row in rows:
        if row["state"] == "COMPLETE":
            rank += 1
            row["rank"] = rank
        if front is not None:
            row["pareto"] = row["trial"] in front if row["state"] == "COMPLETE" else None
    params = ordered_keys(t.record.params for t in trials)
    tests = ordered_keys(t.record.test for t in trials)
    columns = FIRST + params + LAST + tests + TAIL
    if front is not None:
        columns.insert(len(FIRST), "pareto")
        columns.insert(columns.index("seconds"), "train_seconds")
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"rank": "Int64", "best_epoch": "Int64", "n_params": "Int64"})


def write_leaderboard(frame: pd.DataFrame, path: Path) -> Path:
    """Write the leaderboard as CSV (empty cells where a value does not exist)."""
    frame.to_csv(path, index=False)
    return path


def _row(trial: JudgedTrial) -> dict[str, Any]:
    record = trial.record
    return {
        "rank": None,
        "trial": record.number,
        "state": record.state,
        "fit": trial.fit,
        **record.params,
        "best_val_loss": record.best_val_loss,
        "best_epoch": record.best_epoch,
        "epochs_trained": record.epochs_trained,
        **record.test,
        "n_params": record.n_params,
        "train_seconds": record.train_seconds,
        "seconds": round(record.duration_seconds, 2) if record.duration_seconds else None,
        "fit_reason": trial.diagnosis.reason if trial.diagnosis else record.fail_reason,
    }


def _order(trial: JudgedTrial) -> tuple[bool, float, int]:
    value = trial.record.best_val_loss
    value = value if value is not None and math.isfinite(value) else math.inf
    return (trial.record.state != "COMPLETE", value, trial.record.number)


def ordered_keys(dicts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Keys of several dicts in first-seen order, with units_0, units_1 ... together and in
    order where the first of them appears (a late 3-layer trial would put units_2 last).

    Example:
        >>> ordered_keys([{"units_0": 8, "lr": 0.1}, {"units_0": 8, "lr": 0.1, "units_1": 4}])
        ['units_0', 'units_1', 'lr']
    """
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(d))
    units = sorted((k for k in seen if _unit_index(k) >= 0), key=_unit_index)
    out: list[str] = []
    for key in seen:
        if _unit_index(key) < 0:
            out.append(key)
        elif units[0] not in out:
            out.extend(units)
    return out


def _unit_index(name: str) -> int:
    """i for "units_i", else -1."""
    prefix, _, index = name.rpartition("_")
    return int(index) if prefix == "units" and index.isdigit() else -1

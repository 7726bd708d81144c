"""Confirming a study's top configurations: each retrained with new seeds, summarised per seed.

Pure functions over per-seed outcomes (no MLflow, no Keras): the mean and standard deviation of
each number, the ranking on the mean, and whether two configurations differ by more than their
seed noise.

The noise rule: two configurations are *within noise* when their mean best val losses differ
by no more than the sum of their standard deviations, i.e. their mean ± std intervals overlap.
A gap wider than one seed-std on each side is what a reader sees as a real difference on a
plot of the seeds; with the 3 seeds a confirm runs by default a formal test would have little
power, and this rule errs towards "within noise" (it never calls a seed-to-seed wobble a win).
One seed has no spread: its std is 0 and only an exact tie is within noise.

Example:
    >>> a = ConfigResult(16, "r16", 0.2801, [SeedOutcome(0, 0.2834 - d, {}, "good_fit")
    ...                                      for d in (-0.004, 0.0, 0.004)])
    >>> b = ConfigResult(19, "r19", 0.2790, [SeedOutcome(0, 0.2899 - d, {}, "good_fit")
    ...                                      for d in (-0.005, 0.0, 0.005)])
    >>> within_noise(a.stats("best_val_loss"), b.stats("best_val_loss"))
    True
    >>> noise_line(a, b)
    'trial 16 and trial 19 are within noise: 0.2834 ± 0.004 vs 0.2899 ± 0.005'
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

LOSS = "best_val_loss"
CONFIRM_ATTR = "confirm"  # the study user attr holding `to_json(results)`, for its report


@dataclass(frozen=True)
class Stats:
    """Mean and sample standard deviation (0 for one value) of the finite values; n counts them."""

    mean: float
    std: float
    n: int

    def text(self, digits: int = 4) -> str:
        """`0.2834 ± 0.004` (the std to one significant digit more than its own scale needs)."""
        if self.n == 0:
            return "-"
        return f"{self.mean:.{digits}f} ± {self.std:.2g}"


def stats(values: Sequence[float | None]) -> Stats:
    """Stats of the finite values; NaN mean and std when there is none.

    Example:
        >>> stats([1.0, 2.0, 3.0, None, float("nan")])
        Stats(mean=2.0, std=1.0, n=3)
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Stats(math.nan, math.nan, 0)
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return Stats(statistics.fmean(finite), std, len(finite))


def within_noise(a: Stats, b: Stats) -> bool:
    """Whether the mean ± std intervals of `a` and `b` overlap (see the module docstring)."""
    if a.n == 0 or b.n == 0:
        return False
    return abs(a.mean - b.mean) <= a.std + b.std


@dataclass(frozen=True)
class SeedOutcome:
    """One retrain of one configuration with one new seed.

    `best_val_loss` is None for a retrain that diverged (it counts in the fit classes, not in
    the means); `metrics` holds the task's val metric at the best epoch and the test metrics.
    """

    seed: int
    best_val_loss: float | None
    metrics: dict[str, float]
    fit: str


@dataclass(frozen=True)
class ConfigResult:
    """A configuration of the study (its trial) and its confirm retrains."""

    trial_number: int
    run_id: str  # the trial's MLflow run: the confirm runs say `confirm_of=<run_id>`
    search_val_loss: float  # what the study itself measured, with the trial's own seed
    seeds: list[SeedOutcome] = field(default_factory=list)

    def stats(self, name: str) -> Stats:
        """Stats of `best_val_loss` or of a metric over the seeds."""
        if name == LOSS:
            return stats([s.best_val_loss for s in self.seeds])
        return stats([s.metrics.get(name) for s in self.seeds])

    def metric_names(self) -> list[str]:
        """Every metric a seed has, val metric first, then test metrics, each sorted."""
        names = {n for s in self.seeds for n in s.metrics}
        return sorted(names, key=lambda n: (n.startswith("test_"), n))

    def fits(self) -> str:
        """The fit classes of the seeds, most common first: `good_fit 2, overfit 1`."""
        counts = Counter(s.fit for s in self.seeds)
        return ", ".join(f"{fit} {n}" for fit, n in counts.most_common())


def ranked(results: Sequence[ConfigResult]) -> list[ConfigResult]:
    """The configurations by mean best val loss over their seeds (none last), ties by trial."""
    def key(r: ConfigResult) -> tuple[float, int]:
        mean = r.stats(LOSS).mean
        return (mean if math.isfinite(mean) else math.inf, r.trial_number)

    return sorted(results, key=key)


def noise_line(a: ConfigResult, b: ConfigResult) -> str:
    """One sentence comparing two configurations on mean best val loss."""
    sa, sb = a.stats(LOSS), b.stats(LOSS)
    verdict = "are within noise" if within_noise(sa, sb) else "differ by more than their noise"
    return (f"trial {a.trial_number} and trial {b.trial_number} {verdict}: "
            f"{sa.text()} vs {sb.text()}")


@dataclass(frozen=True)
class Verdict:
    """What the confirmation says: the ranking, whether the study's winner kept first place,
    and one noise sentence per configuration against the confirmed winner."""

    ranking: list[ConfigResult]
    study_winner: int  # trial number of the study's own best trial
    winner_kept: bool
    lines: list[str]

    @property
    def confirmed(self) -> ConfigResult:
        return self.ranking[0]


def verdict(results: Sequence[ConfigResult], study_winner: int) -> Verdict:
    """Rank `results` and compare the confirmed winner with every other configuration.

    Raises:
        ValueError: when `results` is empty.
    """
    if not results:
        raise ValueError("no configuration to confirm")
    ranking = ranked(results)
    first = ranking[0]
    kept = first.trial_number == study_winner
    lines = [
        f"the study's winner, trial {study_winner}, is "
        + ("still first on the mean" if kept else
           f"no longer first on the mean: trial {first.trial_number} is")
    ]
    lines += [noise_line(first, other) for other in ranking[1:]]
    return Verdict(ranking, study_winner, kept, lines)


def table_rows(ranking: Sequence[ConfigResult]) -> list[dict[str, Any]]:
    """One row per configuration: rank, trial, seeds, search val loss, mean ± std of best val
    loss and of every metric, fit classes."""
    names: list[str] = []
    for r in ranking:
        names += [n for n in r.metric_names() if n not in names]
    rows = []
    for rank, r in enumerate(ranking, start=1):
        row: dict[str, Any] = {
            "rank": rank, "trial": r.trial_number, "seeds": len(r.seeds),
            "search val_loss": f"{r.search_val_loss:.4f}", LOSS: r.stats(LOSS).text(),
        }
        row.update({n: r.stats(n).text() for n in names})
        row["fit"] = r.fits()
        rows.append(row)
    return rows


def table_text(ranking: Sequence[ConfigResult]) -> str:
    """The rows of `table_rows` as aligned terminal text."""
    rows = table_rows(ranking)
    if not rows:
        return "no configuration confirmed"
    heads = list(rows[0])
    widths = {h: max(len(h), *(len(str(r.get(h, ""))) for r in rows)) for h in heads}
    lines = ["  ".join(h.ljust(widths[h]) for h in heads)]
    lines += ["  ".join(str(r.get(h, "")).ljust(widths[h]) for h in heads) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def to_json(results: Sequence[ConfigResult]) -> list[dict[str, Any]]:
    """The results as JSON (kept in the study's user attrs for its report)."""
    return [
        {"trial": r.trial_number, "run_id": r.run_id, "search_val_loss": r.search_val_loss,
         "seeds": [{"seed": s.seed, LOSS: s.best_val_loss, "metrics": s.metrics, "fit": s.fit}
                   for s in r.seeds]}
        for r in results
    ]


def from_json(raw: Any) -> list[ConfigResult]:
    """Read back `to_json`; anything malformed gives [] (a report never fails on it)."""
    try:
        return [
            ConfigResult(int(c["trial"]), str(c["run_id"]), float(c["search_val_loss"]), [
                SeedOutcome(int(s["seed"]), None if s[LOSS] is None else float(s[LOSS]),
                            {k: float(v) for k, v in s["metrics"].items()}, str(s["fit"]))
                for s in c["seeds"]])
            for c in raw
        ]
    except (KeyError, TypeError, ValueError):
        return []

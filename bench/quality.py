"""Items 1, 4 and 5: what a search finds in a wall-clock budget, what pruning saves, what
workers add. Every search runs in its own process and temporary stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FITSCOPE = [sys.executable, "-m", "fitscope"]


def _fitscope_search(experiment: str, extra: list[str], spec_changes: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """Run `fitscope search` in a fresh directory and summarise its study from the storage."""
    import optuna
    import yaml

    from experiments.registry import load_spec
    from search.objectives import best_trial
    from search.record import record_from_trial

    folder = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
    target = experiment
    if spec_changes:
        raw = load_spec(experiment).model_dump(mode="json")
        for section, values in spec_changes.items():
            raw[section] |= values
        target = str(folder / f"{experiment}.yaml")
        Path(target).write_text(yaml.safe_dump(raw))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    subprocess.run([*FITSCOPE, "search", target, "--study", "bench", *extra], cwd=folder, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name="bench", storage=f"sqlite:///{folder / 'optuna.db'}")
    records = [record_from_trial(t) for t in study.trials if t.state.is_finished()]
    chosen = best_trial(study)  # a multi-objective study's: its front's lowest val_loss
    assert chosen is not None, "no trial completed"
    best = record_from_trial(chosen)
    metric = "val_accuracy" if "val_accuracy" in best.history else "val_mae"
    return {
        "trials": len(records),
        "complete": sum(r.state == "COMPLETE" for r in records),
        "pruned": sum(r.state == "PRUNED" for r in records),
        "epochs": sum(r.epochs_trained for r in records),
        "best_val_loss": chosen.values[0],
        f"best_{metric}": best.history[metric][best.best_epoch or 0],
        "best_val_accuracy_any": max((max(r.history.get(metric, [0])) for r in records), default=0),
        "test_accuracy": best.test.get("test_accuracy"),
        "wall_seconds": wall,
    }


def _peer(name: str, budget: float) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "bench.peers", name, "--budget", str(budget)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds_total"] = time.perf_counter() - started
    return result


def equal_budget(budget: float) -> dict[str, Any]:
    """Item 1: fitscope's default fashion search vs the two peers, same budget and seed."""
    return {
        "budget_seconds": budget,
        "fitscope": _fitscope_search("fashion", ["--timeout", str(budget)]),
        "optuna_plain": _peer("optuna", budget),
        "kerastuner_hyperband": _peer("kerastuner", budget),
    }


def pruning(budget: float, trials: int = 12) -> dict[str, Any]:
    """Item 4: the same fashion study with and without pruning, same trial count."""
    runs = {}
    for pruner in ("hyperband", "none"):
        runs[pruner] = _fitscope_search(
            "fashion", ["--trials", str(trials), "--timeout", str(budget)],
            {"search": {"pruner": pruner}},
        )
    return runs


def workers(budget: float) -> dict[str, Any]:
    """Item 5: trials per hour on iris with 1 and 2 worker processes on this machine."""
    out = {}
    for n in (1, 2):
        run = _fitscope_search("iris", ["--timeout", str(budget / 2), "--trials", "1000",
                                        *(["--workers", str(n)] if n > 1 else [])])
        run["trials_per_hour"] = 3600 * run["trials"] / run["wall_seconds"]
        out[str(n)] = run
    return out


def quality_lines(q: dict[str, Any]) -> list[str]:
    rows = []
    for name, label in (("fitscope", "fitscope default search"),
                        ("optuna_plain", "plain Optuna TPE + Hyperband"),
                        ("kerastuner_hyperband", "KerasTuner Hyperband")):
        r = q[name]
        val = r.get("best_val_accuracy", r.get("best_val_accuracy_any"))
        rows.append(f"| {label} | {r['trials']} | {r['epochs']} | {val:.4f} | "
                    f"{r['test_accuracy']:.4f} | {r.get('wall_seconds', 0):.0f} |")
    ours = q["fitscope"]["test_accuracy"]
    peers = max(q["optuna_plain"]["test_accuracy"], q["kerastuner_hyperband"]["test_accuracy"])
    met = ours >= peers and ours >= 0.89
    return [
        "### Quality at equal budget (item 1)",
        "",
        f"Fashion-MNIST, {q['budget_seconds']:.0f} s wall clock each, same space and seed.",
        "",
        "| search | trials | epochs | best val acc | test acc of best | wall s |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Target (fitscope >= both peers and >= 0.89 test accuracy): **{_verdict(met)}** "
        f"({ours:.4f} vs best peer {peers:.4f}).",
        "",
    ]


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


def pruning_lines(p: dict[str, Any]) -> list[str]:
    with_, without = p["hyperband"], p["none"]
    ratio = without["epochs"] / max(1, with_["epochs"])
    return [
        "### Pruning (item 4)",
        "",
        "| pruner | trials | pruned | epochs | best val acc | wall s |",
        "|---|---|---|---|---|---|",
        *[f"| {name} | {r['trials']} | {r['pruned']} | {r['epochs']} | "
          f"{r['best_val_accuracy']:.4f} | {r['wall_seconds']:.0f} |"
          for name, r in p.items()],
        "",
        f"Pruning trains **{ratio:.2f}x fewer epochs**; best val accuracy difference "
        f"{100 * (without['best_val_accuracy'] - with_['best_val_accuracy']):+.2f} points "
        "(without minus with). Target (>= 2x fewer epochs, <= 0.5 points lower): **"
        + _verdict(ratio >= 2 and without["best_val_accuracy"] - with_["best_val_accuracy"]
                   <= 0.005) + "**.",
        "",
    ]


def workers_lines(w: dict[str, Any]) -> list[str]:
    one, two = w["1"], w["2"]
    return [
        "### Workers (item 5)",
        "",
        "| workers | trials | wall s | trials/hour |",
        "|---|---|---|---|",
        *[f"| {n} | {r['trials']} | {r['wall_seconds']:.0f} | {r['trials_per_hour']:.0f} |"
          for n, r in w.items()],
        "",
        f"**{two['trials_per_hour'] / one['trials_per_hour']:.2f}x** with 2 workers "
        f"(target >= 1.3x: {_verdict(two['trials_per_hour'] >= 1.3 * one['trials_per_hour'])}).",
        "",
    ]

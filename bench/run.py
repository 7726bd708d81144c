"""`python -m bench.run [--quick]`: run the benchmarks, save bench/results/<date>-<host>.json and
append a summary to docs/benchmarks.md. All figures of one invocation come from one machine."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from bench.common import append_markdown, results_path, save


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="items 2, 3 and 6 only (< 3 min)")
    # item 1 runs 3 searchers x --seeds searches; at 350 s each (plus start-up and the last
    # trial's overrun, ~45 s) three seeds take about an hour on 2 cores
    parser.add_argument("--budget", type=float, default=None,
                        help="wall-clock seconds per search: item 1 (default 350) and items 4 "
                             "and 5 (default 600)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds per searcher in item 1 (medians and ranges over them)")
    parser.add_argument("--only", choices=["quality"], default=None,
                        help="run item 1 only and leave docs/benchmarks.md alone (a check of "
                             "the harness, e.g. --budget 40 --seeds 1); results JSON as usual")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    from bench import input_pipeline, overhead, peak, startup

    results: dict[str, Any] = {"quick": args.quick}
    path = results_path("-quick" if args.quick else "")
    lines: list[str] = []

    last = time.perf_counter()

    def keep(name: str, value: Any) -> Any:
        # each item's own wall time too: what makes `make bench-quick` long shows in its JSON
        nonlocal last
        now = time.perf_counter()
        results.setdefault("item_seconds", {})[name] = round(now - last, 1)
        last = now
        results[name] = value
        save(results, path)
        return value

    def show(section: list[str]) -> None:
        lines.extend(section)
        print("\n".join(section), flush=True)

    if not args.quick:
        from bench import quality

        show(quality.quality_lines(keep("quality", quality.equal_budget(
            args.budget or 350.0, args.seeds))))
        if args.only == "quality":
            print(f"\nresults: {path}")
            return 0
        show(quality.pruning_lines(keep("pruning", quality.pruning(args.budget or 600.0))))
        show(quality.workers_lines(keep("workers", quality.workers(args.budget or 600.0))))
        from bench import scale
        from tests.postgres import initdb_path

        # per-trial cost against study size, on SQLite and (where installed) PostgreSQL
        measured = scale.run([0, 50, 250, 1000, 4000], 20, postgres=initdb_path() is not None)
        show(scale.lines(keep("scale", measured)))

    show(_peak_lines(keep("peak", peak.run(epochs=1 if args.quick else 2, quick=args.quick))))
    show(input_pipeline.lines(keep("input_pipeline", input_pipeline.run(quick=args.quick))))
    keep("startup", startup.cli_timings(1 if args.quick else args.repeats))
    # 50 XOR trials take ~2 min here (TensorFlow traces every new model for ~1.5 s), more
    # than bench-quick's budget: it measures 10 and quotes the growth per trial too
    keep("memory", startup.rss_growth(10 if args.quick else 50))
    if not args.quick:
        keep("memory_keras", startup.keras_rss_growth(50))
    show(_startup_lines(results["startup"], results["memory"], results.get("memory_keras")))
    # quick: 2 blocks of 2 two-epoch trials a side (about 75 s); full: 3 blocks of 3, 3 epochs
    size = 2 if args.quick else 3
    show(_overhead_lines(keep("overhead", overhead.run(epochs=size, trials=size, blocks=size))))

    append_markdown("make bench-quick" if args.quick else "make bench", lines)
    print(f"\nresults: {path}")
    o = results["overhead"]
    print(f"trial overhead ratio (fitscope / bare fit+evaluate): {o['ratio']:.3f} "
          f"({o['fixed_cost_seconds']:+.2f} s per trial)")
    return 0


def _overhead_lines(o: dict[str, Any]) -> list[str]:
    return [
        "### Trial overhead (item 2)",
        "",
        f"Fashion-MNIST, 784-256-256-10, batch 128, {o['epochs']} epochs; medians of "
        f"{len(o['bare_seconds'])} trials a side, in alternating blocks; a fitscope trial is "
        "timed inside a running study (its MLflow run is written on a background thread, and "
        "the study's final wait for it is spread over its trials).",
        "",
        "| | median s | runs |",
        "|---|---|---|",
        f"| bare `fit` + `evaluate` | {o['bare_median']:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in o['bare_seconds'])} |",
        f"| fitscope trial (pruning, recorder, test metrics, MLflow run, diagnosis, plots) | "
        f"{o['fitscope_median']:.2f} | {', '.join(f'{t:.2f}' for t in o['fitscope_seconds'])} |",
        "",
        f"**Ratio {o['ratio']:.3f}** (target <= 1.05: "
        f"{'met' if o['ratio'] <= 1.05 else 'not met'}); "
        f"fixed cost {o['fixed_cost_seconds']:+.2f} s per trial, "
        f"plus {o['study_start_seconds']:.2f} s once per study. The fixed cost does not grow "
        "with epochs, so a 15-epoch trial of the default search pays it once over five times "
        "the training.",
        "",
    ]


def _peak_lines(p: dict[str, Any]) -> list[str]:
    rows = [
        f"| {r['batch_size']} | {r['steps_per_execution']} | {r['seconds_per_epoch']:.2f} | "
        f"{r['gflops']:.1f} | {100 * r['fraction_of_peak']:.1f}% |"
        for r in p["training"]
    ]
    return [
        "### Fraction of peak (item 3)",
        "",
        f"float32 matmul peak (numpy, 2048²): **{p['matmul_peak_gflops']:.1f} GFLOP/s**. "
        f"Training 784-256-128-10 on 48,000 images ({p['training'][0]['gflop_per_epoch']:.0f} "
        "GFLOP per epoch, 6 × params × samples):",
        "",
        "| batch | steps_per_execution | s/epoch | GFLOP/s | of peak |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


def _startup_lines(cli: dict[str, Any], mem: dict[str, Any],
                   keras_mem: dict[str, Any] | None) -> list[str]:
    rows = [f"| `fitscope {k}` | {v['median_seconds']:.2f} | {v['imports_tensorflow']} |"
            for k, v in cli.items()]
    return [
        "### Start-up and memory (item 6)",
        "",
        "| command | median s | imports TensorFlow |",
        "|---|---|---|",
        *rows,
        "",
        f"RSS over {mem['trials']} tracked XOR trials in one process: "
        f"{mem['rss_after_warmup_mb']:.0f} MB after 5, {mem['rss_after_mb']:.0f} MB after "
        f"{mem['trials']} (**growth {mem['growth_mb']:.0f} MB**, "
        f"{mem['growth_mb_per_trial']:.1f} MB per trial, so "
        f"{50 * mem['growth_mb_per_trial']:.0f} MB per 50 trials; target < 150 MB).",
        *([] if keras_mem is None else [
            "",
            f"Bare Keras, same process shape ({keras_mem['models']} XOR models built, fitted, "
            f"predicted and cleared, no Optuna or MLflow): growth "
            f"**{keras_mem['growth_mb']:.0f} MB** ({keras_mem['growth_mb_per_model']:.1f} MB "
            "per model), TensorFlow's own leak (keras-team/keras#17458). fitscope's own share: "
            f"**{mem['growth_mb_per_trial'] - keras_mem['growth_mb_per_model']:+.1f} MB per "
            "trial** (at or below zero: nothing measurable beyond Keras').",
        ]),
        "",
    ]


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m bench.run [--quick]`: run the benchmarks, save bench/results/<date>-<host>.json and
append a summary to docs/benchmarks.md. All figures of one invocation come from one machine."""

from __future__ import annotations

import argparse
import os
from typing import Any

from bench.common import append_markdown, save


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="items 2, 3 and 6 only (< 3 min)")
    parser.add_argument("--budget", type=float, default=600.0,
                        help="wall-clock seconds per search in items 1, 4 and 5")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    from bench import overhead, peak, startup

    results: dict[str, Any] = {"quick": args.quick}
    lines: list[str] = []
    if not args.quick:
        from bench import quality

        results["quality"] = quality.equal_budget(args.budget)
        lines += quality.quality_lines(results["quality"])
        results["pruning"] = quality.pruning(args.budget)
        lines += quality.pruning_lines(results["pruning"])
        results["workers"] = quality.workers(args.budget)
        lines += quality.workers_lines(results["workers"])

    results["peak"] = peak.run()
    lines += _peak_lines(results["peak"])
    results["startup"] = startup.cli_timings(args.repeats)
    results["memory"] = startup.rss_growth(50)
    lines += _startup_lines(results["startup"], results["memory"])
    results["overhead"] = overhead.run(epochs=3, repeats=args.repeats)
    lines += _overhead_lines(results["overhead"])

    path = save(results, "-quick" if args.quick else "")
    append_markdown("make bench-quick" if args.quick else "make bench", lines)
    print("\n".join(lines))
    print(f"\nresults: {path}")
    o = results["overhead"]
    print(f"trial overhead ratio (fitscope / bare fit+evaluate): {o['ratio']:.3f} "
          f"(+{o['fixed_cost_seconds']:.2f} s per trial)")
    return 0


def _overhead_lines(o: dict[str, Any]) -> list[str]:
    return [
        "### Trial overhead (item 2)",
        "",
        f"Fashion-MNIST, 784-256-256-10, batch 128, {o['epochs']} epochs; medians of "
        f"{len(o['bare_seconds'])} interleaved repeats.",
        "",
        "| | median s | runs |",
        "|---|---|---|",
        f"| bare `fit` + `evaluate` | {o['bare_median']:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in o['bare_seconds'])} |",
        f"| fitscope trial (pruning, recorder, test metrics, MLflow run, diagnosis, plots) | "
        f"{o['fitscope_median']:.2f} | {', '.join(f'{t:.2f}' for t in o['fitscope_seconds'])} |",
        "",
        f"**Ratio {o['ratio']:.3f}**; fixed cost {o['fixed_cost_seconds']:.2f} s per trial "
        f"(at {o['seconds_per_epoch']:.2f} s/epoch a typical 15-epoch trial gives "
        f"{1 + o['fixed_cost_seconds'] / (15 * o['seconds_per_epoch']):.3f}).",
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


def _startup_lines(cli: dict[str, Any], mem: dict[str, Any]) -> list[str]:
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
        f"{mem['trials']} (**growth {mem['growth_mb']:.0f} MB**, target < 150 MB).",
        "",
    ]


if __name__ == "__main__":
    raise SystemExit(main())

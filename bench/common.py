"""Shared helpers for the benchmarks: timing medians, the default Fashion-MNIST config, results."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def median_seconds(run: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of `repeats` calls (the machines are noisy: medians, never one shot)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; no psutil dependency)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }


def results_path(name: str = "") -> Path:
    """bench/results/<UTC date and time>-<host><name>.json"""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M")
    return RESULTS_DIR / f"{stamp}-{socket.gethostname()}{name}.json"


def save(results: dict[str, Any], path: Path) -> Path:
    """Write (or rewrite) the results file: called after every item, so an hour-long run that
    fails late still leaves what it measured."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **results}, indent=2, default=str))
    return path


def append_markdown(title: str, lines: list[str]) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        ""
        if DOC.exists()
        else "# Benchmarks\n\nEvery section is one run of one command on one machine.\n"
    )
    with DOC.open("a", encoding="utf-8") as out:
        out.write(
            f"{head}\n## {title} — {stamp}, {socket.gethostname()} ({os.cpu_count()} cores)\n\n"
        )
        out.write("\n".join(lines) + "\n")

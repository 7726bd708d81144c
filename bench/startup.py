"""Item 6: start-up of the CLI (no TensorFlow import for --help, list, show) and the memory growth
of one process over many trials."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import median_seconds, rss_mb

PROBE = (
    "import sys\nfrom fitscope.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n"
    "    pass\nprint('TF-IMPORTED' if 'tensorflow' in sys.modules else 'no-tf', file=sys.stderr)"
)


def cli_timings(repeats: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for argv in (["--help"], ["list"], ["show", "fashion"], ["show", "iris"]):
        def call(argv: list[str] = argv) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)],
                                  capture_output=True, text=True)
        median, _ = median_seconds(call, repeats)
        imported = "TF-IMPORTED" in call().stderr
        out[" ".join(argv)] = {"median_seconds": median, "imports_tensorflow": imported}
    return out


def rss_growth(trials: int = 50) -> dict[str, Any]:
    """RSS after a warm-up of 5 trials vs after `trials`: leaks show up as steady growth."""
    from experiments.data import load_dataset
    from experiments.registry import load_spec, parse_spec
    from search.study import StudySettings, run_study
    from tracking.study_tracker import MlflowStudyTracker

    raw = load_spec("xor").model_dump(mode="json")
    raw["train"] |= {"max_epochs": 3, "patience": 3}
    spec = parse_spec(raw)
    data = load_dataset(spec)
    tmp = Path(tempfile.mkdtemp(prefix="fitscope-rss-"))
    settings = StudySettings(study_name="rss", storage=f"sqlite:///{tmp / 'optuna.db'}",
                             trials=5, timeout=None, seed=1, runs_dir=tmp / "runs")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"

    def batch(n: int) -> None:
        tracker = MlflowStudyTracker(uri, spec, settings, data.class_names, 0.69,
                                     log_best_model=False)
        run_study(spec, data, settings.__class__(**{**settings.__dict__, "trials": n}), [tracker])

    batch(5)
    after_warmup = rss_mb()
    batch(trials - 5)
    after = rss_mb()
    return {"trials": trials, "rss_after_warmup_mb": after_warmup, "rss_after_mb": after,
            "growth_mb": after - after_warmup}

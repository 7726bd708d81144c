"""Item 6: start-up of the CLI (no TensorFlow import for --help, list, show) and the memory growth
of one process over many trials."""

from __future__ import annotations

import dataclasses
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
    from fitscope.session import session_for
    from search.study import StudySettings, run_study

    raw = load_spec("xor").model_dump(mode="json")
    raw["train"] |= {"max_epochs": 3, "patience": 3}
    spec = parse_spec(raw)
    data = load_dataset(spec)
    tmp = Path(tempfile.mkdtemp(prefix="fitscope-rss-"))
    settings = StudySettings(study_name="rss", storage=f"sqlite:///{tmp / 'optuna.db'}",
                             trials=5, timeout=None, seed=1, runs_dir=tmp / "runs")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"

    def batch(n: int) -> None:
        tracker = session_for(spec, settings, uri, data).mlflow(log_best_model=False)
        run_study(spec, data, dataclasses.replace(settings, trials=n), [tracker])

    batch(5)
    after_warmup = rss_mb()
    batch(trials - 5)
    after = rss_mb()
    return {"trials": trials, "rss_after_warmup_mb": after_warmup, "rss_after_mb": after,
            "growth_mb": after - after_warmup,
            "growth_mb_per_trial": (after - after_warmup) / (trials - 5)}


def keras_rss_growth(models: int = 50) -> dict[str, Any]:
    """The same measure for bare Keras: build, fit, predict and `clear_session()` an XOR net
    `models` times, no Optuna, no MLflow. Keras on TensorFlow keeps a few MB per model that
    `clear_session()` does not free (keras-team/keras#17458, #20552); this tells that share
    apart from fitscope's own. Run in a fresh process so the two measures do not mix."""
    out = subprocess.run([sys.executable, "-c", KERAS_LOOP.format(models=models)],
                         capture_output=True, text=True, check=True)
    after_warmup, after = (float(v) for v in out.stdout.split()[-2:])
    return {"models": models, "rss_after_warmup_mb": after_warmup, "rss_after_mb": after,
            "growth_mb": after - after_warmup,
            "growth_mb_per_model": (after - after_warmup) / (models - 5)}


KERAS_LOOP = """
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np
from bench.common import rss_mb
x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32"); y = np.array([0, 1, 1, 0])
def one():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"], steps_per_execution=16)
    model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0)
    model.predict(x, verbose=0)
    keras.backend.clear_session()
for _ in range(5): one()
warm = rss_mb()
for _ in range({models} - 5): one()
print(warm, rss_mb())
"""

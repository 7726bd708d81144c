"""Issue 14 item 5: the three Keras backends (TensorFlow, JAX, PyTorch) on the same work.

For each backend, in a fresh process of its own (Keras fixes its backend when it is imported):
- s/epoch of the 784-256-128-10 Fashion-MNIST network (batch 128, Adam, fitscope's compile and
  input pipeline), one training epoch over the 48,000 training rows, median of `--repeats`,
  and its fraction of the machine's float32 matmul peak (measured in the same process);
- the per-trial fixed cost of a new model: seed, build, compile, a 1-epoch fit with validation
  on 256 rows and a predict (tracing/compiling every function a trial uses), minus the same
  work on the already-built model: median of `--repeats` fresh models;
- whether two fits with the same seed give bitwise identical curves and weights (2 epochs on
  4,096 rows, dropout 0.2, so the dropout masks' random stream counts too);
- whole short studies, timed from outside as a user runs them: `fitscope search iris --trials
  10` and `fitscope search fashion --trials 3` with 3 epochs per trial, each in a new folder.

`python -m bench.backends --python jax=/work/venvs/jax/bin/python --python torch=...` takes each
backend's interpreter (a virtualenv with `fitscope[jax]` or `fitscope[torch]`); without one, a
backend runs under this interpreter. Writes bench/results/<stamp>-<host>-backends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import results_path, save

BACKENDS = ("tensorflow", "jax", "torch")
UNITS = (256, 128)
BATCH = 128
MARK = "BENCH-BACKENDS-RESULT "  # the child's result line, apart from Keras's own output


def _fashion() -> tuple[Any, Any, Any, Any]:
    from experiments.data import load_dataset
    from experiments.registry import load_spec
    from experiments.tasks import task_kind
    from search.params import TrialParams

    spec = load_spec("fashion")
    params = TrialParams(len(UNITS), UNITS, "relu", "adam", 1e-3, BATCH, 0.0)
    return spec, load_dataset(spec), task_kind(spec.task), params


def _new_model(spec: Any, data: Any, task: Any, params: Any, seed: int) -> Any:
    from search.builder import build_model, compile_model
    from search.seeding import seed_everything

    seed_everything(seed, spec.train.deterministic)
    model = build_model(params, data.n_features, task, data.n_classes)
    compile_model(model, params, task, spec.train.steps_per_execution)
    return model


def _fit_kwargs(spec: Any, x: Any, y: Any, xv: Any, yv: Any, batch: int, seed: int
                ) -> dict[str, Any]:
    from search.inputs import fit_data

    return fit_data(spec.train.input_pipeline, (x, y), (xv, yv), batch, seed)


def seconds_per_epoch(repeats: int) -> dict[str, Any]:
    """One training epoch (no validation, as bench/peak.py) after a warm-up fit."""
    import keras

    spec, data, task, params = _fashion()
    model = _new_model(spec, data, task, params, seed=1)
    warm = _fit_kwargs(spec, data.x_train[:2048], data.y_train[:2048], data.x_val[:256],
                       data.y_val[:256], BATCH, seed=1)
    warm.pop("validation_data")
    model.fit(**warm, epochs=1, verbose=0)  # tracing / compiling, outside the timing
    kwargs = _fit_kwargs(spec, data.x_train, data.y_train, data.x_val, data.y_val, BATCH, seed=1)
    kwargs.pop("validation_data")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(**kwargs, epochs=1, verbose=0)
        times.append(time.perf_counter() - started)
    flops = 6 * model.count_params() * len(data.x_train)  # forward 2, backward 4 per weight
    keras.backend.clear_session()
    median = statistics.median(times)
    return {"rows": len(data.x_train), "batch_size": BATCH, "seconds": times,
            "median_seconds": median, "gflops": flops / median / 1e9}


def fixed_cost(repeats: int) -> dict[str, Any]:
    """A new model's first small fit + predict, against the same calls on a traced model."""
    import keras

    spec, data, task, params = _fashion()
    x, y, xv, yv = data.x_train[:256], data.y_train[:256], data.x_val[:256], data.y_val[:256]

    def trial_work(model: Any) -> None:
        model.fit(**_fit_kwargs(spec, x, y, xv, yv, BATCH, seed=1), epochs=1, verbose=0)
        model.predict(xv, verbose=0, batch_size=1024)

    firsts, agains = [], []
    for number in range(repeats + 1):  # the first model also pays for one-off imports
        keras.backend.clear_session()
        started = time.perf_counter()
        model = _new_model(spec, data, task, params, seed=number)
        trial_work(model)
        first = time.perf_counter() - started
        started = time.perf_counter()
        trial_work(model)
        if number:
            firsts.append(first)
            agains.append(time.perf_counter() - started)
    keras.backend.clear_session()
    return {"new_model_seconds": firsts, "traced_model_seconds": agains,
            "fixed_cost_seconds": statistics.median(firsts) - statistics.median(agains)}


def repeatability() -> dict[str, Any]:
    """Two seeded fits of the same model: bitwise equal curves and weights?"""
    import keras
    import numpy as np

    from search.params import TrialParams

    spec, data, task, _ = _fashion()
    params = TrialParams(len(UNITS), UNITS, "relu", "adam", 1e-3, BATCH, 0.2)
    runs = []
    for _ in range(2):
        keras.backend.clear_session()
        model = _new_model(spec, data, task, params, seed=7)
        history = model.fit(**_fit_kwargs(spec, data.x_train[:4096], data.y_train[:4096],
                                          data.x_val[:1024], data.y_val[:1024], BATCH, seed=7),
                            epochs=2, verbose=0).history
        runs.append((history, [np.asarray(w) for w in model.get_weights()]))
    keras.backend.clear_session()
    (h1, w1), (h2, w2) = runs
    largest = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2, strict=True))
    return {"curves_identical": h1 == h2,
            "weights_identical": all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True)),
            "largest_weight_difference": largest, "val_loss": [h1["val_loss"], h2["val_loss"]]}


def child(repeats: int) -> dict[str, Any]:
    """Everything measured inside one backend's process."""
    import keras

    from bench.common import rss_mb
    from bench.peak import matmul_peak_gflops
    from search.seeding import backend_versions

    started = time.perf_counter()
    keras.ops.convert_to_numpy(keras.ops.ones((2, 2)))  # start the backend
    start_seconds = time.perf_counter() - started
    peak = matmul_peak_gflops()
    epoch = seconds_per_epoch(repeats)
    epoch["fraction_of_peak"] = epoch["gflops"] / peak
    return {**backend_versions(), "backend_start_seconds": start_seconds,
            "matmul_peak_gflops": peak, "epoch": epoch, "fixed_cost": fixed_cost(repeats),
            "repeatability": repeatability(), "rss_mb": rss_mb()}


def _environment(backend: str) -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_child(python: str, backend: str, repeats: int) -> dict[str, Any]:
    out = subprocess.run([python, "-m", "bench.backends", "--child", "--repeats", str(repeats)],
                         env=_environment(backend), capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith(MARK)]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{backend} child failed ({out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(MARK))
    return result


def study(python: str, backend: str, experiment: str, trials: int, epochs: int | None
          ) -> dict[str, Any]:
    """`fitscope search` as a user runs it, in a new folder (new stores), timed from outside."""
    import optuna
    import yaml

    from experiments.registry import shipped_specs

    folder = Path(tempfile.mkdtemp(prefix=f"fitscope-bench-{backend}-"))
    target = experiment
    if epochs is not None:
        raw = yaml.safe_load(shipped_specs()[experiment].read_text())
        raw["train"]["max_epochs"] = epochs
        target = str(folder / f"{experiment}.yaml")
        Path(target).write_text(yaml.safe_dump(raw))
    command = [python, "-m", "fitscope", "search", target, "--trials", str(trials)]
    started = time.perf_counter()
    out = subprocess.run(command, env=_environment(backend), cwd=folder, capture_output=True,
                         text=True, check=False)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{backend} {experiment} study failed: {out.stderr[-2000:]}")
    (summary,) = optuna.get_all_study_summaries(f"sqlite:///{folder / 'optuna.db'}")
    trials_done = optuna.load_study(study_name=summary.study_name,
                                    storage=f"sqlite:///{folder / 'optuna.db'}").trials
    states = [t.state.name for t in trials_done]
    return {"experiment": experiment, "trials": trials, "max_epochs": epochs,
            "wall_seconds": wall, "complete": states.count("COMPLETE"),
            "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
            "epochs_trained": sum(len(t.intermediate_values) for t in trials_done),
            "folder": str(folder)}


STUDIES = (("iris", 10, None), ("fashion", 3, 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends")
    parser.add_argument("--python", action="append", default=[], metavar="BACKEND=PATH",
                        help="the interpreter to run a backend with (default: this one)")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(MARK + json.dumps(child(args.repeats)), flush=True)
        return 0
    pythons = dict(item.split("=", 1) for item in args.python)
    backends = args.backends.split(",")
    path = results_path("-backends")
    results: dict[str, Any] = {"command": " ".join(["python -m bench.backends", *(argv or
                                                                                sys.argv[1:])]),
                               "pythons": {b: pythons.get(b, sys.executable) for b in backends},
                               "repeats": args.repeats, "backends": {}, "studies": {}}
    failures = results["failures"] = []
    for backend in backends:
        python = pythons.get(backend, sys.executable)
        try:
            results["backends"][backend] = measured = run_child(python, backend, args.repeats)
        except RuntimeError as exc:  # one backend's failure must not lose the others' numbers
            failures.append(str(exc))
            print(exc, flush=True)
            continue
        finally:
            save(results, path)
        print(f"{backend}: {json.dumps(measured)}", flush=True)
    for experiment, trials, epochs in STUDIES:
        for backend in backends:
            python = pythons.get(backend, sys.executable)
            try:
                row = study(python, backend, experiment, trials, epochs)
            except RuntimeError as exc:
                failures.append(str(exc))
                print(exc, flush=True)
                continue
            finally:
                save(results, path)
            results["studies"].setdefault(experiment, {})[backend] = row
            save(results, path)
            print(f"{backend} {experiment}: {json.dumps(row)}", flush=True)
    print("\n".join(lines(results)))
    print(f"results: {path}")
    return 0


def lines(results: dict[str, Any]) -> list[str]:
    """A markdown table of the run, for docs/performance.md."""
    rows = ["| backend | s/epoch | % of peak | new-model fixed cost | same seed bitwise | "
            + " | ".join(f"{e} study" for e in results["studies"]) + " |",
            "|---" * (5 + len(results["studies"])) + "|"]
    for name, b in results["backends"].items():  # a failed backend has no row
        studies = [f"{s[name]['wall_seconds']:.0f} s ({s[name]['epochs_trained']} epochs)"
                   for s in results["studies"].values() if name in s]
        same = b["repeatability"]["curves_identical"] and b["repeatability"]["weights_identical"]
        rows.append(f"| {name} {b['keras_backend_version']} | {b['epoch']['median_seconds']:.2f} | "
                    f"{100 * b['epoch']['fraction_of_peak']:.0f}% | "
                    f"{b['fixed_cost']['fixed_cost_seconds']:.2f} s | {'yes' if same else 'no'} | "
                    + " | ".join(studies) + " |")
    return rows


if __name__ == "__main__":
    sys.exit(main())

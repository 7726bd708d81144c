"""Item 3b: milliseconds per epoch of `model.fit` with each input pipeline (search/inputs.py),
on XOR (4 rows), iris (120 training rows) and Fashion-MNIST (48,000), the pipelines alternated
in one process so that both see the same machine.

`python -m bench.input_pipeline` runs it alone and writes bench/results/<stamp>-inputs.json.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.common import results_path, save

# (experiment, units, batch size, epochs per timed fit): the small tables fit many short epochs
CASES: tuple[tuple[str, tuple[int, ...], int, int], ...] = (
    ("xor", (8,), 4, 60), ("iris", (32, 32), 16, 40), ("fashion", (256, 128), 128, 1),
)


def ms_per_epoch(experiment: str, units: tuple[int, ...], batch_size: int, epochs: int,
                 repeats: int) -> dict[str, Any]:
    import keras

    from experiments.data import load_dataset
    from experiments.registry import load_spec
    from experiments.tasks import task_kind
    from search.builder import build_model, compile_model
    from search.inputs import INPUT_PIPELINES, fit_data
    from search.params import TrialParams

    spec = load_spec(experiment)
    data = load_dataset(spec)
    task = task_kind(spec.task)
    params = TrialParams(len(units), units, "relu", "adam", 1e-3, batch_size, 0.0)
    times: dict[str, list[float]] = {name: [] for name in INPUT_PIPELINES}
    for _ in range(repeats):
        for pipeline in INPUT_PIPELINES:
            model = build_model(params, data.n_features, task, data.n_classes)
            compile_model(model, params, task, spec.train.steps_per_execution)
            kwargs = fit_data(pipeline, (data.x_train, data.y_train), (data.x_val, data.y_val),
                              batch_size, seed=1)
            model.fit(**kwargs, epochs=1, verbose=0)  # tracing, outside the timing
            started = time.perf_counter()
            model.fit(**kwargs, epochs=epochs, verbose=0)
            times[pipeline].append(1000 * (time.perf_counter() - started) / epochs)
            keras.backend.clear_session()
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"experiment": experiment, "rows": len(data.x_train), "batch_size": batch_size,
            "epochs_per_fit": epochs, "ms_per_epoch": times, "median_ms": medians,
            "speedup": medians["arrays"] / medians["dataset"]}


def run(repeats: int = 3, quick: bool = False) -> dict[str, Any]:
    if quick:  # bench-quick's 3 minutes: iris (a small table), half the epochs, 2 fits a side
        cases = tuple((name, units, batch, epochs // 2) for name, units, batch, epochs in CASES
                      if name == "iris")
        repeats = min(repeats, 2)
    else:
        cases = CASES
    return {"repeats": repeats,
            "cases": [ms_per_epoch(name, units, batch, epochs, repeats)
                      for name, units, batch, epochs in cases]}


def lines(result: dict[str, Any]) -> list[str]:
    rows = [f"| {c['experiment']} | {c['rows']} | {c['batch_size']} | "
            f"{c['median_ms']['arrays']:.1f} | {c['median_ms']['dataset']:.1f} | "
            f"{c['speedup']:.2f}x |" for c in result["cases"]]
    return [
        "### Input pipeline (item 3b)",
        "",
        f"`model.fit` ms per epoch (training and validation), medians of {result['repeats']} "
        "fits a side, alternated; `arrays` is Keras's own per-epoch pipeline, `dataset` "
        "fitscope's (search/inputs.py):",
        "",
        "| data | training rows | batch | arrays ms | dataset ms | speed-up |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


if __name__ == "__main__":
    measured = run()
    print("\n".join(lines(measured)))
    print(f"results: {save({'input_pipeline': measured}, results_path('-inputs'))}")

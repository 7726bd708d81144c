"""Item 3: training FLOP/s of the default Fashion-MNIST network over this machine's float32
matmul peak, both measured in the same run."""

from __future__ import annotations

import time
from typing import Any


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best-of-`repeats` float32 GEMM rate through numpy's BLAS (2 n^3 flops per product)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up: BLAS thread pool start
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def training_gflops(
    units: tuple[int, ...] = (256, 128), batch_size: int = 128, epochs: int = 2,
    steps_per_execution: int = 1,
) -> dict[str, Any]:
    """6 x params x samples per epoch (forward 2, backward 4 flops per weight and sample)."""
    import keras

    from experiments.data import load_dataset
    from experiments.registry import load_spec
    from experiments.tasks import task_kind
    from search.builder import build_model, compile_model
    from search.params import TrialParams

    data = load_dataset(load_spec("fashion"))
    task = task_kind("multiclass")
    params = TrialParams(len(units), units, "relu", "adam", 1e-3, batch_size, 0.0)
    model = build_model(params, data.n_features, task, data.n_classes)
    compile_model(model, params, task, steps_per_execution)
    model.fit(data.x_train[:2048], data.y_train[:2048], epochs=1, batch_size=batch_size, verbose=0)
    started = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    per_epoch = (time.perf_counter() - started) / epochs
    flops = 6 * model.count_params() * len(data.x_train)
    keras.backend.clear_session()
    return {"units": units, "batch_size": batch_size, "steps_per_execution": steps_per_execution,
            "seconds_per_epoch": per_epoch, "gflop_per_epoch": flops / 1e9,
            "gflops": flops / per_epoch / 1e9}


def run(epochs: int = 2, quick: bool = False) -> dict[str, Any]:
    """`quick`: the default against steps_per_execution 1 only (bench-quick's 3 minutes)."""
    peak = matmul_peak_gflops()
    configs = ((128, 1), (128, 16)) if quick else ((128, 1), (128, 16), (256, 1), (512, 1))
    rows = [training_gflops(batch_size=bs, epochs=epochs, steps_per_execution=spe)
            for bs, spe in configs]
    for row in rows:
        row["fraction_of_peak"] = row["gflops"] / peak
    return {"matmul_peak_gflops": peak, "training": rows}

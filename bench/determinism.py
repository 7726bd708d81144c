"""What deterministic kernels cost: one fixed trial trained with and without them.

`python -m bench.determinism [--exp fashion] [--epochs 2] [--repeats 3]` trains the same
configuration and seed `repeats` times each way, alternating (the machines are noisy: medians
of interleaved runs, never one shot), and prints fit seconds and whether the curves repeated.
One process: `search.seeding` switches TensorFlow op determinism on and off between fits.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

# a mid-sized dense net: big enough matmuls for the kernels to matter, fast on 2 cores
CONFIG = {"n_layers": 2, "units_0": 256, "units_1": 256, "activation": "relu",
          "optimizer": "adam", "learning_rate": 1.0e-3, "batch_size": 128, "dropout": 0.0}


def run(experiment: str, epochs: int, repeats: int) -> dict[str, Any]:
    from experiments.data import load_dataset
    from experiments.registry import load_spec
    from experiments.tasks import task_kind
    from search.params import TrialParams
    from search.training import fit_candidate

    spec = load_spec(experiment)
    data = load_dataset(spec)
    params = TrialParams.from_flat(CONFIG)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    curves: dict[bool, list[list[float]]] = {True: [], False: []}
    for _ in range(repeats):
        for deterministic in (True, False):
            train = spec.train.model_copy(update={"max_epochs": epochs, "patience": epochs,
                                                  "deterministic": deterministic})
            result = fit_candidate(params, data, task_kind(spec.task), train, seed=1234)
            seconds[deterministic].append(result.train_seconds)
            curves[deterministic].append(result.history["val_loss"])
    return {
        "experiment": experiment, "epochs": epochs, "repeats": repeats,
        "deterministic_s": statistics.median(seconds[True]),
        "nondeterministic_s": statistics.median(seconds[False]),
        "all_s": seconds,
        "deterministic_repeats": all(c == curves[True][0] for c in curves[True]),
        "nondeterministic_repeats": all(c == curves[False][0] for c in curves[False]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", default="iris")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = run(args.exp, args.epochs, args.repeats)
    on, off = out["deterministic_s"], out["nondeterministic_s"]
    print(f"{out['experiment']}, {out['epochs']} epochs, median of {out['repeats']}: "
          f"deterministic {on:.2f} s, non-deterministic {off:.2f} s ({(on / off - 1) * 100:+.0f}%)"
          f"; curves repeat: {out['deterministic_repeats']} / {out['nondeterministic_repeats']}")
    print(f"all fits (s): {out['all_s']}")


if __name__ == "__main__":
    main()

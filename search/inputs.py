"""How a fit's batches reach Keras: the `data` keyword arguments of `model.fit`.

Keras on TensorFlow wraps NumPy arrays in a new tf.data pipeline every epoch, for training and
again for validation, each with a parallel map, autotuning and a prefetch thread, and rewrites
its graph each time. On small tables that set-up costs more than the epoch: 197 ms per XOR
epoch (4 rows) against 54 ms with `dataset`, 3.1x on iris, 1.09x on Fashion-MNIST
(`python -m bench.input_pipeline`, docs/performance.md). `dataset` hands Keras
a plain pipeline instead: batches gathered from shuffled indices, as Keras's own does, but with
tf.data's graph rewrites and autotuning off, so that creating each epoch's iterator is cheap.
Training semantics are Keras's: one pass over the data per epoch, the last batch partial, a new
order every epoch, fixed by the trial's seed.

`arrays` passes the arrays to Keras as fitscope did before (runs recorded without an
`input_pipeline` setting were trained that way, and their reruns are). Other backends iterate
NumPy arrays without that cost, so they always get the arrays.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

DATASET = "dataset"
ARRAYS = "arrays"
INPUT_PIPELINES = (DATASET, ARRAYS)


def effective_pipeline(pipeline: str, backend: str) -> str:
    """The pipeline a fit really uses: `dataset` is built with tf.data, so on JAX and PyTorch the
    fit falls back to the arrays (which those backends iterate without TensorFlow's per-epoch
    cost). Trials record this one, so a rerun on any backend feeds the data the same way.

    Example:
        >>> effective_pipeline("dataset", "tensorflow"), effective_pipeline("dataset", "jax")
        ('dataset', 'arrays')
    """
    return pipeline if backend == "tensorflow" else ARRAYS


def fit_data(
    pipeline: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    batch_size: int,
    seed: int,
) -> dict[str, Any]:
    """The keyword arguments of `model.fit` that carry the training and validation data.

    Example:
        >>> kwargs = fit_data("dataset", (x, y), (x_val, y_val), 32, seed=7)  # doctest: +SKIP
        >>> model.fit(**kwargs, epochs=10)  # doctest: +SKIP
    """
    import keras

    if effective_pipeline(pipeline, keras.backend.backend()) == ARRAYS:
        return {"x": train[0], "y": train[1], "validation_data": val,
                "batch_size": batch_size, "shuffle": True}
    return {
        "x": _batches(*train, batch_size=batch_size, shuffle_seed=seed),
        "validation_data": _batches(*val, batch_size=batch_size, shuffle_seed=None),
        "shuffle": False,  # the dataset shuffles itself (Keras warns that it ignores True)
    }


# The tensors of the arrays last fed, by the arrays' identity: every trial of a study trains on
# the same arrays, and copying Fashion-MNIST's 150 MB into a new tensor cost each trial ~0.3 s
# on 2 cores. A weak reference checks that the array is still the one copied (an id can be
# reused once an array is freed); the data of a study is never changed in place.
_TENSORS: dict[int, tuple[weakref.ref[np.ndarray], Any]] = {}
_KEEP = 4  # train and validation features and targets: one study's data


def release_tensors() -> None:
    """Forget the tensors copied for the last study (its loop of trials has ended)."""
    _TENSORS.clear()


def _tensor(array: np.ndarray) -> Any:
    import tensorflow as tf

    held = _TENSORS.get(id(array))
    if held is not None and held[0]() is array:
        return held[1]
    tensor = tf.constant(array)
    _TENSORS[id(array)] = (weakref.ref(array), tensor)
    while len(_TENSORS) > _KEEP:
        _TENSORS.pop(next(iter(_TENSORS)))  # the oldest: a previous study's data
    return tensor


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None) -> Any:
    import tensorflow as tf

    features, targets = _tensor(x), _tensor(y)
    indices = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        # a new permutation each time Keras starts an epoch, the same sequence for the same seed
        # (an explicit seed is also what TensorFlow's op determinism requires of a shuffle)
        indices = indices.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = indices.batch(batch_size).map(
        lambda i: (tf.gather(features, i), tf.gather(targets, i))
    )
    options = tf.data.Options()
    # the per-iterator costs: the graph rewrite, the autotuner and the injected prefetch
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_optimization.inject_prefetch = False
    options.autotune.enabled = False
    return dataset.with_options(options)

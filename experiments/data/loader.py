"""`load_dataset`: the one entry point, loading each data set once per process.

Lookup order: this process's cache, then the disk cache of preprocessed arrays
(experiments/data/array_cache.py, shared by workers and reruns), then a build from the files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import DataError
from experiments.data import array_cache
from experiments.data.dataset import Dataset
from experiments.data.locations import data_dir_from
from experiments.spec import ExperimentSpec

# One entry per (task, data spec, data dir): trials of a study share the arrays instead of
# re-reading and re-fitting the preprocessing each time.
_CACHE: dict[tuple[str, str, str | None], Dataset] = {}


def load_dataset(spec: ExperimentSpec, data_dir: str | Path | None = None) -> Dataset:
    """Load, split and preprocess the spec's data once per process; later calls get the same object.

    A new process first tries the disk cache, keyed on the spec, the code and the identity of
    the source files (FITSCOPE_ARRAY_CACHE=0 turns it off); its arrays are read-only memory maps.

    Args:
        spec: The experiment; `spec.task` and `spec.data` define the data.
        data_dir: Directory searched first for data files (--data-dir); defaults to
            $FITSCOPE_DATA_DIR, then the user cache, then a download.

    Returns:
        The Dataset, with read-only arrays (shared by every caller).

    Raises:
        DataError: for any missing, corrupt or malformed data, as one line naming the file.

    Example:
        >>> from experiments.spec import ExperimentSpec
        >>> spec = ExperimentSpec.model_validate({"name": "xor", "task": "binary",
        ...     "data": {"source": "generated", "dataset": "xor", "split": "none"}})
        >>> load_dataset(spec).x_train.shape
        (4, 2)
    """
    resolved = data_dir_from(data_dir)
    key = (spec.task, spec.data.model_dump_json(), None if resolved is None else str(resolved))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    disk_key = array_cache.cache_key(spec, resolved)
    dataset = None if disk_key is None else array_cache.load(disk_key, spec.task)
    if dataset is None:
        dataset = _build(spec, resolved)
        _check(dataset, spec)
        # stat'ed again: a file replaced while it was being read must not be stored under the
        # identity it had before
        if disk_key is not None and array_cache.cache_key(spec, resolved) == disk_key:
            array_cache.store(disk_key, dataset)
    for array in dataset.arrays():
        array.setflags(write=False)  # a trial that scales in place would corrupt later trials
    _CACHE[key] = dataset
    return dataset


def clear_cache() -> None:
    """Forget every loaded data set (tests; a long-lived process whose files changed)."""
    _CACHE.clear()


def _build(spec: ExperimentSpec, data_dir: Path | None) -> Dataset:
    # Imported here: pandas and scikit-learn take seconds to import, and `fitscope --help` or
    # validating a spec must not pay for them.
    if spec.data.source == "idx":
        from experiments.data.images import idx_dataset

        return idx_dataset(spec.task, spec.data, data_dir)
    from experiments.data.preprocess import tabular_dataset
    from experiments.data.tables import read_table

    return tabular_dataset(read_table(spec.data, data_dir), spec.task, spec.data)


def _check(dataset: Dataset, spec: ExperimentSpec) -> None:
    """The shapes and dtypes every consumer relies on; a violation is a bug in this package."""
    y_dtype = np.float32 if spec.task == "regression" else np.int64
    for split in ("train", "val", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        if len(x) == 0:
            raise DataError(f"{spec.name}: the {split} split is empty")
        if x.ndim != 2 or x.dtype != np.float32 or y.ndim != 1 or y.dtype != y_dtype:
            raise AssertionError(f"{split}: x {x.dtype}{x.shape}, y {y.dtype}{y.shape}")
        if len(x) != len(y) or x.shape[1] != len(dataset.feature_names):
            raise AssertionError(f"{split}: {len(x)} rows x {x.shape[1]} columns, {len(y)} "
                                 f"targets, {len(dataset.feature_names)} feature names")

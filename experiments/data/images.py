"""Image data sets in IDX files (Fashion-MNIST): official test split, val carved from train.

A numpy fast path: 70,000 x 784 pixels need no ColumnTransformer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import DataError
from experiments.data.catalog import IDX_DATASETS, IdxDataset
from experiments.data.dataset import Dataset
from experiments.data.idx import IDX_IMAGES, IDX_LABELS, parse_idx
from experiments.data.resolve import resolve_named
from experiments.data.split import carve
from experiments.data.targets import check_classes
from experiments.spec import DataSpec


def idx_dataset(task: str, data: DataSpec, data_dir: Path | None) -> Dataset:
    """Load an IDX data set; `test_size` and `split` are ignored (the test split is official)."""
    info = IDX_DATASETS.get(data.dataset or "")
    if info is None:
        raise DataError(f"data.dataset: unknown idx data set {data.dataset!r}; expected one of "
                        f"{', '.join(IDX_DATASETS)}")
    if task == "regression":
        raise DataError(f"{data.dataset} is a classification data set; use task: multiclass")
    check_classes(len(info.class_names), task, str(data.dataset), info.class_names)
    train_x, train_y = _pair(info, info.train_images, info.train_labels, data_dir)
    test_x, test_y = _pair(info, info.test_images, info.test_labels, data_dir)

    train, val = carve(np.arange(len(train_y)), data.val_size, data.split_seed, train_y,
                       f"validation split of {data.dataset}")
    x_train, x_val, x_test = scale_pixels(
        train_x[train], (train_x[val], test_x), data.scale
    )
    note = (f"{len(train)}/{len(val)} train/val (random_state {data.split_seed}, stratified), "
            f"official {len(test_y)} test")
    return Dataset(
        x_train=x_train, y_train=train_y[train].astype(np.int64),
        x_val=x_val, y_val=train_y[val].astype(np.int64),
        x_test=x_test, y_test=test_y.astype(np.int64),
        feature_names=tuple(f"px{i}" for i in range(x_train.shape[1])),
        class_names=info.class_names,
        n_classes=len(info.class_names),
        split_note=note,
    )


def scale_pixels(
    train: np.ndarray, others: tuple[np.ndarray, ...], scale: str
) -> tuple[np.ndarray, ...]:
    """Scale uint8 pixels to float32; minmax/standard statistics come from `train` only."""
    offset, divisor = pixel_scaling(train, scale)
    return tuple(apply_scaling(a, scale, offset, divisor) for a in (train, *others))


def pixel_scaling(
    train: np.ndarray, scale: str
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(offset, divisor) per pixel for minmax/standard, from the train images; (None, None) for
    divide255 and none, which need no statistics."""
    if scale in ("divide255", "none"):
        return None, None
    pixels = train.astype(np.float32)
    if scale == "minmax":
        low = pixels.min(axis=0)
        span = pixels.max(axis=0) - low
        return low, np.where(span > 0, span, 1)  # constant border pixels stay 0
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)  # standard
    return mean, np.where(std > 0, std, 1)


def apply_scaling(
    pixels: np.ndarray, scale: str, offset: np.ndarray | None, divisor: np.ndarray | None
) -> np.ndarray:
    """Flattened pixels (n, 784) scaled as the train images were (pixel_scaling)."""
    if scale == "divide255":
        return np.divide(pixels, np.float32(255), dtype=np.float32)
    scaled = pixels.astype(np.float32)
    if offset is None or divisor is None:
        return scaled
    return (scaled - offset) / divisor


def train_images(data: DataSpec, data_dir: Path | None) -> np.ndarray:
    """The train split's flattened images (val carved out as idx_dataset does): what the pixel
    scaling was fitted on."""
    info = IDX_DATASETS.get(data.dataset or "")
    if info is None:
        raise DataError(f"data.dataset: unknown idx data set {data.dataset!r}")
    images, labels = _pair(info, info.train_images, info.train_labels, data_dir)
    train, _ = carve(np.arange(len(labels)), data.val_size, data.split_seed, labels,
                     f"validation split of {data.dataset}")
    return images[train]


def _pair(
    info: IdxDataset, images_name: str, labels_name: str, data_dir: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """Images flattened to (n, pixels) and their labels, checked against each other."""
    images = _read(info, images_name, IDX_IMAGES, data_dir)
    labels = _read(info, labels_name, IDX_LABELS, data_dir)
    if len(images) != len(labels):
        raise DataError(f"{images_name} holds {len(images)} images but {labels_name} "
                        f"{len(labels)} labels")
    if len(labels) and labels.max() >= len(info.class_names):
        raise DataError(f"{labels_name}: label {labels.max()} out of range "
                        f"0..{len(info.class_names) - 1}")
    return images.reshape(len(images), -1), labels


def _read(info: IdxDataset, name: str, magic: int, data_dir: Path | None) -> np.ndarray:
    path, raw = resolve_named(name, data_dir, system_dirs=info.system_dirs,
                              apt_package=info.apt_package)
    return parse_idx(raw, magic, path)

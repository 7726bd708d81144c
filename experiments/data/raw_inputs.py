"""A trained network's inputs as the user has them, and the fitted preprocessing that turns them
into the arrays the network was trained on.

A study's best model must take raw data: the CSV's columns as in the original file, or raw
28x28 pixels. `fit_raw_inputs` gets the preprocessing back by fitting it again from the spec:
the split and the train rows are fixed by `split_seed`, so the imputers, scaler and one-hot
encoder come out as they were when the study loaded its data (the array cache keeps only the
arrays). The result pickles, so a saved model carries it.

Example:
    >>> from experiments.registry import load_spec
    >>> inputs = fit_raw_inputs(load_spec("iris"), None)  # doctest: +SKIP
    >>> inputs.transform(inputs.example).shape  # doctest: +SKIP
    (3, 4)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from common.errors import DataError, InputError

if TYPE_CHECKING:
    import pandas as pd

    from experiments.spec import ExperimentSpec

IMAGE_SHAPE = (28, 28)  # the idx data sets fitscope reads (Fashion-MNIST)
EXAMPLE_ROWS = 3  # rows (or images) in a model's input example


@dataclass(frozen=True)
class RawColumn:
    """One column of the original table, without the target.

    Attributes:
        name: The column's name in the file.
        role: "numeric" (parsed to float), "categorical" (one-hot) or "ignored" (data.drop:
            accepted in the input and not used).
        dtype: The MLflow schema type of the column: "double" for numbers in the file (ints
            too: a CSV of whole ages must not be refused), else "string".
    """

    name: str
    role: Literal["numeric", "categorical", "ignored"]
    dtype: str


@dataclass(frozen=True, eq=False)
class RawInputs:
    """What a model of this experiment takes, and how to turn it into network inputs.

    Tables: `columns` and the fitted `transformer`. Images: `scale` and its per-pixel `offset`
    and `divisor` (minmax/standard), for raw pixels of shape IMAGE_SHAPE.

    Attributes:
        kind: "table" or "images".
        task: The spec's task (regression, binary, multiclass).
        class_names: Names of classes 0..K-1; None for regression.
        example: A few raw rows (a DataFrame) or images (float32 pixels 0-255): the input
            example.
    """

    kind: Literal["table", "images"]
    task: str
    class_names: tuple[str, ...] | None
    example: Any
    columns: tuple[RawColumn, ...] = ()
    target: str = ""
    transformer: Any = None
    scale: str = "none"
    offset: np.ndarray | None = None
    divisor: np.ndarray | None = None
    source: str = ""  # the file the preprocessing was fitted on, for messages

    @property
    def features(self) -> list[str]:
        """The columns the network uses (required in every input)."""
        return [c.name for c in self.columns if c.role != "ignored"]

    def describe(self) -> str:
        """What the model takes, in one phrase."""
        if self.kind == "images":
            return f"{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} images with pixels 0-255"
        return "rows with the columns " + ", ".join(self.features)

    def transform(self, raw: Any) -> np.ndarray:
        """Raw rows or images to the float32 network inputs (checked first: `check`).

        Raises:
            InputError: naming the column or the shape that does not fit.
        """
        checked = self.check(raw)
        if self.kind == "images":
            from experiments.data.images import apply_scaling

            flat = checked.reshape(len(checked), -1)
            return apply_scaling(flat, self.scale, self.offset, self.divisor)
        return np.asarray(self.transformer.transform(checked), dtype=np.float32)

    def check(self, raw: Any) -> Any:
        """The raw input, checked and ready for `transform`: the feature columns with numeric
        ones parsed (tables), or (n, 28, 28) float32 pixels (images).

        Raises:
            InputError: one line naming the missing, unknown or mistyped column, or the shape.
        """
        if self.kind == "images":
            return _check_images(raw)
        return self._check_table(raw)

    def conform(self, raw: Any) -> pd.DataFrame:
        """The table's known columns (the target left out), typed as the model's signature
        says: numbers as float64, text as str (missing values stay missing).

        Raises:
            InputError: for a missing feature column, an unknown column, or text in a numeric
                column, naming it.
        """
        import pandas as pd

        from experiments.data.columns import as_numeric

        if not isinstance(raw, pd.DataFrame):
            raise InputError(f"expected a table of rows with the columns {', '.join(self.features)}"
                             f", got {type(raw).__name__}")
        frame = raw.rename(columns=str)
        features = self.features
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise InputError(f"column {missing[0]!r} is missing; the model needs "
                             f"{', '.join(features)}")
        known = {c.name for c in self.columns} | {self.target}
        extra = [c for c in frame.columns if c not in known]
        if extra:
            raise InputError(f"unknown column {extra[0]!r}; the model takes "
                             f"{', '.join(features)}" + self._ignored_note())
        if len(frame) == 0:
            raise InputError("the input holds no rows")
        out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
        for column in self.columns:
            if column.name not in frame.columns:
                continue  # an ignored column left out
            values = frame[column.name].reset_index(drop=True)
            if column.dtype == "double":
                # the same parsing as training: text in a numeric column is an error, not NaN
                try:
                    out[column.name] = as_numeric(values, "input", f"column {column.name!r}")
                except DataError as exc:  # the user's input is wrong, not a data file
                    raise InputError(str(exc).removeprefix("input: ")) from None
            else:
                out[column.name] = values.astype(object).where(values.notna(), None).map(
                    lambda v: v if v is None else str(v)
                )
        return out

    def _check_table(self, raw: Any) -> pd.DataFrame:
        return self.conform(raw)[self.features]

    def _ignored_note(self) -> str:
        ignored = [c.name for c in self.columns if c.role == "ignored"]
        return f" (and ignores {', '.join(ignored)})" if ignored else ""

    def schema(self) -> list[tuple[str, str, bool]]:
        """(column, MLflow type, required) of a table input, in file order: the model's input
        signature (ignored columns are optional)."""
        return [(c.name, c.dtype, c.role != "ignored") for c in self.columns]


def fit_raw_inputs(spec: ExperimentSpec, data_dir: str | Path | None) -> RawInputs:
    """The experiment's raw-input preprocessing, fitted again from the spec as `load_dataset`
    fitted it (same split, same train rows, same statistics).

    Raises:
        DataError: when the data cannot be read, as `load_dataset` would.
    """
    from experiments.data.locations import data_dir_from

    resolved = data_dir_from(data_dir)
    if spec.data.source == "idx":
        return _image_inputs(spec, resolved)
    return _table_inputs(spec, resolved)


def _table_inputs(spec: ExperimentSpec, data_dir: Path | None) -> RawInputs:
    from experiments.data.preprocess import fit_table
    from experiments.data.tables import read_table

    table = read_table(spec.data, data_dir)
    fitted = fit_table(table, spec.task, spec.data)
    raw = table.frame.drop(columns=[table.target])
    columns = tuple(
        RawColumn(
            str(name),
            "numeric" if name in fitted.numeric
            else "categorical" if name in fitted.categorical else "ignored",
            _schema_type(raw[name]),
        )
        for name in raw.columns
    )
    # complete rows read best as an example (JSON has no NaN); train rows only
    train = raw.iloc[fitted.train]
    complete = train[train.notna().all(axis=1)]
    example = (complete if len(complete) >= EXAMPLE_ROWS else train).head(EXAMPLE_ROWS)
    inputs = RawInputs(
        kind="table", task=spec.task, class_names=fitted.class_names,
        example=example, columns=columns, target=table.target,
        transformer=fitted.transformer, scale=spec.data.scale, source=table.source,
    )
    return dataclasses.replace(inputs, example=inputs.conform(example))  # typed as the schema


def _image_inputs(spec: ExperimentSpec, data_dir: Path | None) -> RawInputs:
    from experiments.data.catalog import IDX_DATASETS
    from experiments.data.images import pixel_scaling, train_images

    info = IDX_DATASETS[spec.data.dataset or ""]
    train = train_images(spec.data, data_dir)
    offset, divisor = pixel_scaling(train, spec.data.scale)
    example = train[:EXAMPLE_ROWS].reshape(-1, *IMAGE_SHAPE).astype(np.float32)
    return RawInputs(
        kind="images", task=spec.task, class_names=tuple(info.class_names),
        example=example, scale=spec.data.scale, offset=offset, divisor=divisor,
        source=str(spec.data.dataset),
    )


def _schema_type(values: pd.Series) -> str:
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
    return "double" if numeric else "string"


def _check_images(raw: Any) -> np.ndarray:
    pixels = np.asarray(raw)
    if pixels.ndim == 2 and pixels.shape == IMAGE_SHAPE:
        pixels = pixels[None]  # one image
    if pixels.ndim == 2 and pixels.shape[1] == IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
        pixels = pixels.reshape(-1, *IMAGE_SHAPE)  # flattened rows of 784 pixels
    if pixels.ndim != 3 or pixels.shape[1:] != IMAGE_SHAPE:
        raise InputError(f"images must be {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} pixels (shape n x "
                         f"{IMAGE_SHAPE[0]} x {IMAGE_SHAPE[1]}); got shape "
                         f"{' x '.join(map(str, pixels.shape))}")
    if len(pixels) == 0:
        raise InputError("the input holds no images")
    if not np.issubdtype(pixels.dtype, np.number) or np.issubdtype(pixels.dtype, np.bool_):
        raise InputError(f"images must hold numbers (pixels 0-255), got {pixels.dtype}")
    if pixels.size and (np.nanmin(pixels) < 0 or np.nanmax(pixels) > 255
                        or not np.isfinite(pixels).all()):
        raise InputError("pixels must lie in 0-255 (raw 8-bit intensities)")
    return pixels.astype(np.float32)


def read_input_file(path: str | Path, kind: str) -> Any:
    """New raw data for a model from a file: a CSV with a header row (tables), or images as
    NumPy .npy or IDX (.gz or not) files.

    Raises:
        InputError: a missing or unreadable file, naming it.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such file")
    if kind == "images":
        return _read_images(file)
    import pandas as pd

    try:
        return pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{file}: cannot read as CSV with a header row: {text}") from None


def _read_images(file: Path) -> np.ndarray:
    from experiments.data.checksum import gunzip
    from experiments.data.idx import IDX_IMAGES, parse_idx

    if file.suffix == ".npy":
        try:
            return np.asarray(np.load(file, allow_pickle=False))
        except (ValueError, OSError) as exc:
            raise InputError(f"{file}: not a NumPy .npy array: {exc}") from None
    try:
        raw = gunzip(file) if file.suffix == ".gz" else file.read_bytes()
        return parse_idx(raw, IDX_IMAGES, file)
    except (DataError, OSError) as exc:
        raise InputError(f"{file}: expected a .npy array or an IDX image file: "
                         f"{str(exc).removeprefix(f'{file}: ')}") from None

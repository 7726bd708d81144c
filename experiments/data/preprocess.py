"""Split a table, fit the preprocessing on the train split only, and build the Dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

from common.errors import DataError
from experiments.data.columns import feature_columns
from experiments.data.dataset import Dataset
from experiments.data.split import carve
from experiments.data.tables import Table
from experiments.data.targets import class_indices, regression_values
from experiments.spec import DataSpec


@dataclass(frozen=True)
class FittedTable:
    """One table split into row indices, with the preprocessing fitted on its train rows.

    Attributes:
        features: The feature columns, numeric ones parsed to float (raw rows, no imputation).
        numeric: Numeric feature columns, in file order.
        categorical: One-hot encoded feature columns, in file order.
        y: Class indices or regression values of every row.
        class_names: Names of classes 0..K-1; None for regression.
        train: Row indices of the train split (val and test likewise).
        transformer: Imputers, scaler and one-hot encoder, fitted on the train rows only.
        note: One human line describing the split.
    """

    features: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    y: np.ndarray
    class_names: tuple[str, ...] | None
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    transformer: ColumnTransformer
    note: str


def fit_table(table: Table, task: str, data: DataSpec) -> FittedTable:
    """Split `table` (holdout or none) and fit its preprocessing on the train rows.

    Holdout: `test_size` of all rows is the test set, then `val_size` of the rest the val set,
    both with random_state `split_seed`, stratified for classification. The imputers, scaler
    and one-hot encoder see the train rows only, so val and test stay unseen. The same spec
    always gives the same split and the same fitted transformer, which is how a study's best
    model gets its preprocessing back (experiments/data/raw_inputs.py).
    """
    features, numeric, categorical = feature_columns(table, data.drop, data.categorical)
    target = table.frame[table.target]
    class_names: tuple[str, ...] | None = None
    if task == "regression":
        y = regression_values(target, table.source)
    else:
        y, class_names = class_indices(target, task, table.source, table.label_names)

    rows = np.arange(len(features))
    if data.split == "none":
        train = val = test = rows
        note = f"no split: train = val = test = all {len(rows)} rows"
    else:
        stratify = None if class_names is None else y
        rest, test = carve(rows, data.test_size, data.split_seed, stratify,
                           f"test split of {table.source}")
        train, val = carve(rest, data.val_size, data.split_seed, stratify,
                           f"validation split of {table.source}")
        how = ", stratified" if stratify is not None else ""
        note = (f"{len(train)}/{len(val)}/{len(test)} train/val/test "
                f"(random_state {data.split_seed}{how})")

    transformer = build_transformer(numeric, categorical, data.scale)
    transformer.fit(features.iloc[train])
    return FittedTable(features, numeric, categorical, y, class_names, train, val, test,
                       transformer, note)


def tabular_dataset(table: Table, task: str, data: DataSpec) -> Dataset:
    """Split `table`, preprocess it (fit_table) and return the arrays."""
    fitted = fit_table(table, task, data)
    features, transformer, y = fitted.features, fitted.transformer, fitted.y

    def x(part: np.ndarray) -> np.ndarray:
        return np.asarray(transformer.transform(features.iloc[part]), dtype=np.float32)

    names = tuple(str(n) for n in transformer.get_feature_names_out())
    x_train = x(fitted.train)
    x_val, x_test = (
        (x_train, x_train) if data.split == "none" else (x(fitted.val), x(fitted.test))
    )
    bad = [n for n, ok in zip(names, np.isfinite(x_train).all(axis=0), strict=True) if not ok]
    if bad:
        raise DataError(f"{table.source}: column {bad[0]} holds infinite values")
    return Dataset(
        x_train=x_train, y_train=y[fitted.train],
        x_val=x_val, y_val=y[fitted.val],
        x_test=x_test, y_test=y[fitted.test],
        feature_names=names,
        class_names=fitted.class_names,
        n_classes=None if fitted.class_names is None else len(fitted.class_names),
        split_note=fitted.note,
    )


def build_transformer(numeric: list[str], categorical: list[str], scale: str) -> ColumnTransformer:
    """Numeric: median imputation, then the spec's scaler; categorical: mode imputation, one-hot.

    Feature names keep the column names ("Age", "Sex_male"), not sklearn's "num__" prefixes.
    """
    numeric_steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median"))]
    scaler = _scaler(scale)
    if scaler is not None:
        numeric_steps.append(("scale", scaler))
    categorical_steps = [
        ("impute", SimpleImputer(strategy="most_frequent")),
        # ignore: a category seen only in val/test encodes as all zeros instead of failing.
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    parts = []
    if numeric:
        parts.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        parts.append(("categorical", Pipeline(categorical_steps), categorical))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def divide255(x: np.ndarray) -> np.ndarray:
    """Pixel intensities 0..255 to 0..1 (a named function, so the transformer pickles)."""
    return np.asarray(x, dtype=np.float64) / 255.0


def _scaler(scale: str) -> object | None:
    if scale == "minmax":
        return MinMaxScaler()
    if scale == "standard":
        return StandardScaler()
    if scale == "divide255":
        return FunctionTransformer(divide255, feature_names_out="one-to-one")
    return None  # "none": imputed values pass through unscaled

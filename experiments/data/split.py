"""Index splits shared by tables and images: fixed seed, stratified for classification."""

from __future__ import annotations

import numpy as np

from common.errors import DataError


def carve(
    indices: np.ndarray, fraction: float, seed: int, stratify: np.ndarray | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (rest, carved) with `fraction` of them carved out.

    Args:
        indices: Row indices to split.
        fraction: Share of `indices` that goes to the carved part.
        seed: random_state, so every trial and every rerun sees the same split.
        stratify: Labels of all rows (indexed by `indices`), or None for regression.
        what: The split's name and origin, for the error message ("test split of boston.csv").

    Raises:
        DataError: if the rows are too few (or a class too rare) to split this way.
    """
    from sklearn.model_selection import train_test_split  # sklearn is slow to import

    try:
        rest, carved = train_test_split(
            indices,
            test_size=fraction,
            random_state=seed,
            stratify=None if stratify is None else stratify[indices],
        )
    except ValueError as exc:
        raise DataError(f"cannot make the {what} from {len(indices)} rows: {exc}") from None
    if len(rest) == 0 or len(carved) == 0:
        raise DataError(f"cannot make the {what}: {len(indices)} rows leave an empty split")
    # Unsorted on purpose: the same rows in the same order as train_test_split(x, y, ...) in
    # the course notebooks, so results stay comparable.
    return rest, carved

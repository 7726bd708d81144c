"""The `dataset` input pipeline (search/inputs.py, TensorFlow backend) keeps Keras's epoch
semantics: every row once per epoch, the last batch partial, a new order each epoch, the same
orders for the same seed."""

from __future__ import annotations

import numpy as np

from search.inputs import fit_data


def _epochs(seed: int, n_epochs: int = 3) -> list[list[list[int]]]:
    rows = np.arange(10, dtype=np.float32).reshape(10, 1)
    targets = np.arange(10, dtype=np.int64)
    kwargs = fit_data("dataset", (rows, targets), (rows[:3], targets[:3]), 4, seed=seed)
    # each `for` is one epoch: Keras starts a new iterator over the dataset every epoch
    return [[batch[1].numpy().tolist() for batch in kwargs["x"]] for _ in range(n_epochs)]


def test_every_row_once_per_epoch_in_a_new_order_fixed_by_the_seed() -> None:
    epochs = _epochs(seed=3)
    for batches in epochs:
        assert [len(b) for b in batches] == [4, 4, 2]  # ceil(10 / 4) batches, the last partial
        assert sorted(sum(batches, [])) == list(range(10))
    orders = [sum(batches, []) for batches in epochs]
    assert len({tuple(order) for order in orders}) == 3  # reshuffled every epoch
    assert _epochs(seed=3) == epochs  # the same seed, the same sequence of orders
    assert _epochs(seed=4) != epochs


def test_rows_and_targets_stay_paired_and_validation_is_not_shuffled() -> None:
    rows = np.arange(10, dtype=np.float32).reshape(10, 1) * 10
    targets = np.arange(10, dtype=np.int64)
    kwargs = fit_data("dataset", (rows, targets), (rows, targets), 4, seed=1)
    for x, y in kwargs["x"]:
        assert (x.numpy()[:, 0] == y.numpy() * 10).all()
    val = [y.numpy().tolist() for _, y in kwargs["validation_data"]]
    assert val == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_arrays_pass_through_as_keras_takes_them() -> None:
    rows, targets = np.zeros((5, 2), np.float32), np.zeros(5, np.int64)
    kwargs = fit_data("arrays", (rows, targets), (rows, targets), 2, seed=0)
    assert kwargs["x"] is rows and kwargs["y"] is targets
    assert kwargs["batch_size"] == 2 and kwargs["shuffle"] is True



def test_a_study_s_arrays_are_copied_to_tensorflow_once_and_never_stale() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    targets = np.arange(6, dtype=np.int64)
    fit_data("dataset", (rows, targets), (rows, targets), 6, seed=1)
    copied = _held_tensors()
    fit_data("dataset", (rows, targets), (rows, targets), 6, seed=2)
    # the next trial gathers from the same tensors instead of copying the arrays again
    assert _held_tensors() == copied
    # other arrays (another study's, or one allocated where a freed one lived) get their own
    for scale in (2, 3):
        del rows
        rows = np.arange(12, dtype=np.float32).reshape(6, 2) * scale
        kwargs = fit_data("dataset", (rows, targets), (rows, targets), 6, seed=1)
        ((x, _),) = list(kwargs["validation_data"])
        assert x.numpy().tolist() == rows.tolist()
    assert _held_tensors() != copied


def _held_tensors() -> set[int]:
    from search import inputs

    return {id(tensor) for _, tensor in inputs._TENSORS.values()}

"""Several user attrs of a running trial written in one storage transaction.

Why hand-written: Optuna commits every `Trial.set_user_attr` on its own, and a trial's result
is up to nine attrs (search.record.fit_attrs). On PostgreSQL each commit is several round trips
to the server: ten attrs took 40 ms one by one and 26 ms in one transaction (SQLite in WAL
mode: 26 and 21 ms; docs/performance.md, issue 20). Optuna has no public call for several
attrs, so on its RDB storage this runs, in one of the storage's own sessions, the per-attr step
that `RDBStorage.set_trial_user_attr` itself runs (`_set_trial_attr_without_commit`: the trial
must still be running, then an upsert). On any other storage, or an Optuna whose internals
differ, it writes one attr at a time through the public call, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """`trial.set_user_attr(key, value)` for every item, committed together where possible.

    Raises what `set_user_attr` raises (a finished trial, a storage error); nothing of the batch
    is kept then.
    """
    batch = _batch_writer(trial) if len(attrs) > 1 else None
    if batch is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    batch(dict(attrs))
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:  # what Trial.set_user_attr keeps for `trial.user_attrs` too
        cached.user_attrs.update(attrs)


def _batch_writer(trial: optuna.Trial) -> Callable[[dict[str, Any]], None] | None:
    """A function writing attrs of `trial` in one transaction, or None where there is none."""
    from optuna.storages import RDBStorage

    backend = getattr(trial.storage, "_backend", trial.storage)  # Optuna caches an RDB storage
    step = getattr(backend, "_set_trial_attr_without_commit", None)
    trial_id = getattr(trial, "_trial_id", None)
    if not isinstance(backend, RDBStorage) or step is None or trial_id is None:
        return None
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:
        return None

    def write(attrs: dict[str, Any]) -> None:
        from sqlalchemy.exc import IntegrityError

        try:
            with _create_scoped_session(backend.scoped_session) as session:
                for key, value in attrs.items():
                    step(session, models.TrialUserAttributeModel, trial_id, key, value)
        except IntegrityError:  # another writer of one of these keys: Optuna's way, one by one
            for key, value in attrs.items():
                trial.set_user_attr(key, value)

    return write

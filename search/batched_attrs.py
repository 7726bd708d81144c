"""Several user attrs of a running trial written in one storage transaction.

Why hand-written: Optuna commits every `Trial.set_user_attr` on its own, and a trial's result
is up to ten attrs (search.record.fit_attrs and its curves). On PostgreSQL each commit is several
round trips to the server: ten attrs took 40 ms one by one and 26 ms in one transaction (SQLite
in WAL mode: 26 and 21 ms; docs/performance.md, issue 20). Optuna has no public call for several
attrs, so on its RDB storage this does in one of the storage's own sessions what
`RDBStorage.set_trial_user_attr` does per attr (`_set_trial_attr_without_commit`: the trial must
still be running, then an upsert), with the running check once and, on SQLite and PostgreSQL,
one multi-row upsert: two statements a batch instead of two per attr. On any other storage, or
an Optuna whose internals differ, it writes one attr at a time through the public call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import optuna


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """`trial.set_user_attr(key, value)` for every item, committed together where possible.

    Raises what `set_user_attr` raises (a finished trial, a storage error, a value that is not
    JSON); nothing of the batch is kept then.
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
    check = getattr(backend, "check_trial_is_updatable", None)
    trial_id = getattr(trial, "_trial_id", None)
    if not isinstance(backend, RDBStorage) or step is None or check is None or trial_id is None:
        return None
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:
        return None
    upsert = _upsert_for(backend.engine.name)

    def write(attrs: dict[str, Any]) -> None:
        from sqlalchemy.exc import IntegrityError

        try:
            with _create_scoped_session(backend.scoped_session) as session:
                if upsert is None:
                    for key, value in attrs.items():
                        step(session, models.TrialUserAttributeModel, trial_id, key, value)
                    return
                row = models.TrialModel.find_or_raise_by_id(trial_id, session)
                check(trial_id, row.state)
                session.execute(upsert(models.TrialUserAttributeModel, [
                    {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                    for key, value in attrs.items()
                ]))
        except IntegrityError:  # another writer of one of these keys: Optuna's way, one by one
            for key, value in attrs.items():
                trial.set_user_attr(key, value)

    return write


def _upsert_for(engine_name: str) -> Callable[[Any, list[dict[str, Any]]], Any] | None:
    """A multi-row INSERT ... ON CONFLICT (trial_id, key) DO UPDATE for SQLite (>= 3.24, as
    Optuna requires for its own upsert) and PostgreSQL; None for other databases."""
    import sqlite3

    if engine_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine_name == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0):
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        return None

    def statement(model: Any, rows: list[dict[str, Any]]) -> Any:
        stmt = insert(model).values(rows)
        return stmt.on_conflict_do_update(index_elements=[model.trial_id, model.key],
                                          set_={"value_json": stmt.excluded.value_json})

    return statement

"""Optuna storages from URLs: SQLite/PostgreSQL (RDB with heartbeats) or a journal file."""

from __future__ import annotations

from pathlib import Path

import optuna

from fitscope.errors import TrackingError
from fitscope.masking import mask_url

JOURNAL_PREFIX = "journal:"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open the storage a URL names.

    `sqlite:///path.db`, `postgresql://...` -> RDBStorage with a heartbeat, so a trial whose
    process died is failed after the grace period instead of staying RUNNING forever;
    `journal:path` or a path ending in `.journal` -> JournalStorage on a file (Optuna's choice
    for several processes on one machine: it needs no server and locks the file).
    """
    if url.startswith(JOURNAL_PREFIX) or url.endswith(".journal"):
        path = Path(url.removeprefix(JOURNAL_PREFIX))
        _check_parent_writable(path, url)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://", "mysql")):
        raise TrackingError(
            f"invalid storage URL {mask_url(url)!r}: expected sqlite:///FILE, postgresql://..., "
            "journal:FILE or a path ending in .journal"
        )
    if url.startswith("sqlite:///"):
        _check_parent_writable(Path(url.removeprefix("sqlite:///")), url)
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    try:
        return RDBStorage(
            url,
            heartbeat_interval=30,
            grace_period=120,  # > 3 heartbeats: a busy CPU can delay one
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            engine_kwargs={"pool_pre_ping": True},
        )
    except Exception as exc:  # SQLAlchemy raises many types; all mean "cannot open this storage"
        raise TrackingError(f"cannot open storage {mask_url(url)}: {_first_line(exc)}") from None


def _check_parent_writable(path: Path, url: str) -> None:
    parent = path.expanduser().resolve().parent
    if not parent.is_dir():
        raise TrackingError(f"storage {url}: directory {parent} does not exist")
    import os

    if not os.access(parent, os.W_OK):
        raise TrackingError(f"storage {url}: directory {parent} is not writable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

"""Optuna storages from URLs: SQLite/PostgreSQL (RDB with heartbeats) or a journal file."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from common.errors import OutputError, TrackingError
from common.folders import writable_dir
from common.masking import mask_url
from common.text import first_line

JOURNAL_PREFIX = "journal:"


def open_storage(
    url: str,
    heartbeat: Heartbeat | None = None,
    on_stale: StaleTrialCallback | None = None,
) -> optuna.storages.BaseStorage:
    """Open the storage a URL names.

    `sqlite:///path.db`, `postgresql://...` -> RDBStorage with a heartbeat, so a trial whose
    process died is failed after the grace period instead of staying RUNNING forever, and
    re-queued once (RetryHeartbeatStaleTrialCallback); `on_stale(study, failed_trial)` is called
    after that for each such trial (the worker command marks its MLflow run FAILED there, which
    keeps this module free of MLflow). `postgresql://` means psycopg 3 (SQLAlchemy would pick
    psycopg2 for the bare scheme). `journal:path` or a path ending in `.journal` -> JournalStorage
    on a file (no server, file locks; it has no heartbeat).

    Example:
        >>> storage = open_storage("sqlite:///optuna.db", Heartbeat(interval=2, grace=6))
        ... # doctest: +SKIP
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
    from optuna.storages import RDBStorage

    heartbeat = heartbeat or Heartbeat.from_env()
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        # Several local workers share this file: a writer waits for the lock (SQLite's own
        # busy timeout) instead of failing with "database is locked" after Python's default 5 s.
        engine_kwargs["connect_args"] = {"timeout": 60}
    for attempt in range(SCHEMA_RACE_RETRIES + 1):
        try:
            storage = RDBStorage(
                sqlalchemy_url(url),
                heartbeat_interval=heartbeat.interval,
                grace_period=heartbeat.grace,
                heartbeat_stale_trial_callback=_StaleTrials(on_stale),
                engine_kwargs=engine_kwargs,
            )
            if url.startswith("sqlite:///"):
                write_ahead_log(storage.engine)
            return storage
        except Exception as exc:  # SQLAlchemy raises many types: "cannot open this storage"
            if attempt < SCHEMA_RACE_RETRIES and _lost_schema_race(exc):
                # workers started at the same moment on an empty database all create Optuna's
                # tables; the losers fail on a unique constraint, and find the tables next time
                time.sleep(0.5 + random.random())
                continue
            raise TrackingError(
                f"cannot open storage {mask_url(url)}: {first_line(exc)}"
            ) from None
    raise AssertionError("unreachable")


def write_ahead_log(engine: Any) -> None:
    """Open every connection of a SQLite storage in write-ahead-log mode, synchronous NORMAL.

    A trial writes a dozen user attrs, one transaction each (Optuna has no batch write). In
    SQLite's default rollback-journal mode each commit fsyncs twice and took ~9 ms here, ~0.12 s
    a trial; in WAL mode with `synchronous=NORMAL` a commit appends to the log without an fsync.
    A killed process still loses nothing committed (only a power cut can lose the last commits),
    and readers no longer block the writer. WAL is a property of the file, kept once set; it
    needs every process on one machine, as SQLite's locks always did (PostgreSQL is for many).
    """
    from sqlalchemy import event

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # the connection that created the tables predates the listener


StaleTrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]
SCHEMA_RACE_RETRIES = 5


def _lost_schema_race(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(sign in text for sign in ("already exists", "duplicate key", "uniqueviolation",
                                         "integrityerror"))


@dataclass(frozen=True)
class Heartbeat:
    """How often a running trial says it is alive, and after how long without a word it is
    taken for dead (failed and retried by the next worker that asks for a trial).

    The defaults suit trials of minutes; the environment (FITSCOPE_HEARTBEAT_INTERVAL,
    FITSCOPE_GRACE_PERIOD, seconds) or `fitscope worker --heartbeat S --grace S` change them.
    """

    interval: int = 30
    grace: int = 120  # > 3 heartbeats: a busy CPU can delay one

    @classmethod
    def from_env(cls) -> Heartbeat:
        """FITSCOPE_HEARTBEAT_INTERVAL and FITSCOPE_GRACE_PERIOD, whole seconds >= 1.

        Raises:
            TrackingError: a value that is not a whole number of seconds >= 1.
        """
        return cls(
            interval=_seconds_from_env("FITSCOPE_HEARTBEAT_INTERVAL", cls.interval),
            grace=_seconds_from_env("FITSCOPE_GRACE_PERIOD", cls.grace),
        )


def _seconds_from_env(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise TrackingError(f"{name}: expected whole seconds >= 1, got {text[:40]!r}")
    return value


class _StaleTrials:
    """Optuna's retry of a stale trial (once), then the caller's own callback."""

    def __init__(self, then: StaleTrialCallback | None) -> None:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        self.retry = RetryHeartbeatStaleTrialCallback(max_retry=1)
        self.then = then

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        if self.then is not None:
            self.then(study, trial)


def sqlalchemy_url(url: str) -> str:
    """`postgresql://` -> `postgresql+psycopg://` (psycopg 3, the driver fitscope installs).

    Example:
        >>> sqlalchemy_url("postgresql://ann@db/optuna")
        'postgresql+psycopg://ann@db/optuna'
    """
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _check_parent_writable(path: Path, url: str) -> None:

    try:  # writes a probe file: os.access says yes to root even where nothing can be written
        writable_dir(path.expanduser().resolve().parent, "directory", create=False)
    except OutputError as exc:
        raise TrackingError(f"storage {mask_url(url)}: {exc}") from None

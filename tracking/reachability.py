"""Is the MLflow tracking store usable, and how long may MLflow wait for it?

Checked before a study loads data or trains, so an unreachable server or an unwritable SQLite
folder costs a second, not a trial. During a study MLflow's HTTP client is told to give up
quickly: the trial records stay in the Optuna storage and `fitscope sync` writes them later.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common.errors import TrackingError
from common.folders import writable_dir
from common.masking import mask_url

# MLflow retries a failed request 7 times with backoff factor 2 and waits 120 s per attempt:
# minutes per call while a server is down, with a study stalled behind it. Two quick retries
# ride out a restart or a blip; anything longer is `fitscope sync`'s job. Set in the
# environment (only where the user has not) because MLflow reads them there on every request.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # waits 0 s, then 2 s (+ up to 1 s of jitter)
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",  # one request; the largest upload is a small model
}
# MLflow prints "View run ... at: <tracking URI>/#/..." for every run it closes over HTTP: with
# credentials in the URI that prints the password, and the console has its own line per trial.
QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
PROBE_TIMEOUT_S = 5.0  # a server on the same network answers /health in milliseconds


def http_client_defaults() -> None:
    """Bound how long one MLflow HTTP call may retry, and keep URLs off stdout (the user's own
    settings win)."""
    for name, value in {**HTTP_LIMITS, **QUIET}.items():
        os.environ.setdefault(name, value)


def check_tracking_store(uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail now, in one line, if MLflow could not write to `uri`.

    `http(s)://` must answer at all (any HTTP status counts: a proxy may guard /health);
    `sqlite:///FILE` needs a writable folder, and so does the working directory, where MLflow
    puts the artifacts of new experiments (./mlruns). Other stores are left to MLflow.

    Example:
        >>> check_tracking_store("http://127.0.0.1:9", timeout=1)
        Traceback (most recent call last):
        ...
        common.errors.TrackingError: MLflow tracking server http://127.0.0.1:9 is not ...

    Raises:
        TrackingError: the server does not answer or a folder cannot be written.
    """
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    dialect = scheme.split("+", 1)[0]  # postgresql+psycopg -> postgresql
    if scheme in ("http", "https"):
        _probe_server(uri, timeout)
    elif scheme == "sqlite":
        _check_sqlite(uri)
    elif dialect in ("", "file"):
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
            raise TrackingError(
                f"MLflow tracking URI {mask_url(uri)} is a file store, which MLflow 3 refuses "
                "(maintenance mode); use sqlite:///mlflow.db, or set MLFLOW_ALLOW_FILE_STORE=true")
    elif dialect not in TRACKING_SCHEMES:
        raise TrackingError(
            f"unsupported MLflow tracking URI {mask_url(uri)}: expected sqlite:///FILE, "
            "http(s)://HOST:PORT or a database URL (postgresql://, mysql://, mssql://)")


def _probe_server(uri: str, timeout: float) -> None:
    parts = urlsplit(uri)
    try:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number
        raise TrackingError(f"invalid MLflow tracking URI {mask_url(uri)}") from None
    # credentials in the URL are MLflow's business; urllib would refuse them in the netloc
    health = urlunsplit((parts.scheme, f"{host}{port}", parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(health, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered: reachable (auth or a proxy may refuse /health itself)
    except (OSError, ValueError) as exc:  # URLError, refused, timeout, TLS: all OSError
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TrackingError(
            f"MLflow tracking server {mask_url(uri)} is not reachable ({reason}); start it, or "
            "choose another --tracking-uri / MLFLOW_TRACKING_URI (default sqlite:///mlflow.db)"
        ) from None


# MLflow's own database stores and hosted services (checked by MLflow when it connects)
TRACKING_SCHEMES = ("postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")


def _check_sqlite(uri: str) -> None:
    raw = uri.split("://", 1)[1].lstrip("/") if uri.startswith("sqlite://") else ""
    if not raw or raw == ":memory:":
        return
    # sqlite:///rel.db is relative, sqlite:////abs.db absolute (SQLAlchemy's convention)
    path = Path("/" + raw) if uri.startswith("sqlite:////") else Path(raw)
    folder = writable_dir(path.parent, "MLflow tracking folder", create=False)
    if path.exists() and not os.access(path, os.W_OK):
        raise TrackingError(f"MLflow tracking database {folder / path.name} is read-only")
    if path.exists():
        _check_sqlite_file(folder / path.name)
    writable_dir(Path.cwd(), "working directory (MLflow keeps artifacts in ./mlruns)", create=False)


def _check_sqlite_file(path: Path) -> None:
    """An existing MLflow database must be one SQLite can read (a truncated copy, another file
    under its name): else every command fails deep inside MLflow with a traceback."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise TrackingError(f"MLflow tracking database {path} is unreadable ({exc}); restore "
                            "it from a backup or choose another --tracking-uri") from None

"""Where things go by default: embedded stores in the working directory; env and flags override.
Also which Keras backend trains (KERAS_BACKEND, read by Keras when it is first imported)."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

from common.errors import BackendError, OutputError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow 3's own default; no server needed


def tracking_uri(flag: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else MLflow's default SQLite file."""
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def storage_url(flag: str | None, tracking: str) -> str:
    """--storage, else FITSCOPE_STORAGE, else an SQLite file beside the MLflow database."""
    if flag or os.environ.get("FITSCOPE_STORAGE"):
        return str(flag or os.environ["FITSCOPE_STORAGE"])
    folder = Path(".")
    if tracking.startswith("sqlite:///"):
        folder = Path(tracking.removeprefix("sqlite:///")).parent
    return f"sqlite:///{folder / 'optuna.db'}"


def missing_sqlite_file(url: str) -> Path | None:
    """The file of an `sqlite:///` URL when it does not exist, else None (other URLs: None).

    Commands that read a store check this first: opening the URL would create an empty database
    and then report the study missing from it.
    """
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return None if path.is_file() else path


def runs_dir(experiment: str, study: str) -> Path:
    """Local files of a study (best-model files, KerasTuner state): never the repo root."""
    root = Path(os.environ.get("FITSCOPE_RUNS_DIR", "runs"))
    return inside(root, experiment, study)


def reports_dir(experiment: str, study: str) -> Path:
    """A study's report folder: reports/<experiment>/<study>/ (FITSCOPE_REPORTS_DIR moves it)."""
    root = Path(os.environ.get("FITSCOPE_REPORTS_DIR", "reports"))
    return inside(root, experiment, study)


def experiment_reports_dir(experiment: str) -> Path:
    """Reports that span an experiment's studies (`fitscope compare`): reports/<experiment>/."""
    return inside(Path(os.environ.get("FITSCOPE_REPORTS_DIR", "reports")), experiment)


def inside(root: Path, *names: str) -> Path:
    """`root/name/...`, refused unless each name is one folder strictly below `root` (a name
    like `../../elsewhere` or `/tmp/x` from a study name must not write outside it).

    Compared lexically, so a folder the user links elsewhere on purpose still works.

    Example:
        >>> str(inside(Path("reports"), "iris", "iris-s42-1a2b3c4d"))
        'reports/iris/iris-s42-1a2b3c4d'
    """
    path = root.joinpath(*names)
    base = os.path.abspath(root)
    plain = all(name not in ("", ".", "..") and "/" not in name and "\\" not in name
                for name in names)
    if not plain or os.path.commonpath([base, os.path.abspath(path)]) != base:
        raise OutputError(f"{'/'.join(names)!r} would leave the folder {root}: a name must be "
                          "one plain folder name")
    return path


# The Keras backends fitscope trains on; each is also the name of its package and of the pip
# extra that installs it (tensorflow is a dependency: always there). docs/performance.md
# measures them.
KERAS_BACKENDS = ("tensorflow", "jax", "torch")


def check_backend(name: str, source: str = "KERAS_BACKEND") -> None:
    """Refuse a backend fitscope cannot train on here, in one line naming `source`, before Keras
    is imported (which would fail deep inside with an ImportError, or run Keras's numpy backend,
    which cannot train).

    Example:
        >>> check_backend("tensorflow")
        >>> check_backend("numpy")
        Traceback (most recent call last):
        ...
        common.errors.BackendError: KERAS_BACKEND=numpy: fitscope trains on tensorflow, jax or torch
    """
    if name not in KERAS_BACKENDS:
        raise BackendError(f"{source}={name}: fitscope trains on {', '.join(KERAS_BACKENDS[:-1])} "
                           f"or {KERAS_BACKENDS[-1]}")
    if find_spec(name) is None:
        raise BackendError(f"{source}={name}, but {name} is not installed in this environment: "
                           f"pip install 'fitscope[{name}]' (make install EXTRAS={name})")


def requested_backend() -> str | None:
    """The backend the user asked for with KERAS_BACKEND, checked; None when it is not set
    (Keras then reads ~/.keras/keras.json, else TensorFlow)."""
    name = os.environ.get("KERAS_BACKEND", "").strip()
    if not name:
        return None
    check_backend(name)
    return name

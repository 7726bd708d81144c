"""Where things go by default: embedded stores in the working directory; env and flags override."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import OutputError

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

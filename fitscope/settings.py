"""Where things go by default: embedded stores in the working directory; env and flags override."""

from __future__ import annotations

import os
from pathlib import Path

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


def runs_dir(experiment: str, study: str) -> Path:
    """Local files of a study (best-model files, KerasTuner state): never the repo root."""
    root = Path(os.environ.get("FITSCOPE_RUNS_DIR", "runs"))
    return root / experiment / study


def reports_dir(experiment: str, study: str) -> Path:
    """A study's report folder: reports/<experiment>/<study>/ (FITSCOPE_REPORTS_DIR moves it)."""
    root = Path(os.environ.get("FITSCOPE_REPORTS_DIR", "reports"))
    return root / experiment / study


def experiment_reports_dir(experiment: str) -> Path:
    """Reports that span an experiment's studies (`fitscope compare`): reports/<experiment>/."""
    return Path(os.environ.get("FITSCOPE_REPORTS_DIR", "reports")) / experiment

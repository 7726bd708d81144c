"""Checks run before a study loads data or trains: each names what is wrong in one line.

A study that can only fail after its first trial (the model file cannot be saved, the MLflow
server is down) should fail before that trial, when nothing has been spent yet.
"""

from __future__ import annotations

from pathlib import Path

from common.folders import writable_dir
from tracking.reachability import check_tracking_store


def check_study_outputs(tracking: str, runs_dir: Path, reports_dir: Path) -> None:
    """The tracking store is reachable and the runs and reports folders are writable."""
    check_tracking_store(tracking)
    writable_dir(runs_dir, "runs dir (FITSCOPE_RUNS_DIR)")
    writable_dir(reports_dir, "reports dir (FITSCOPE_REPORTS_DIR)")

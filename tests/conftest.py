"""Shared fixtures: real data from ../shared/data, a temporary MLflow store, quiet TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("FITSCOPE_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # downloads and cached arrays of a test session never touch the user's ~/.cache
    os.environ["FITSCOPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("fitscope-cache"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working directory with its own MLflow store and Optuna storage."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("FITSCOPE_STORAGE", raising=False)
    monkeypatch.setenv("FITSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def tracking_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"

"""Environment fingerprint: what code, libraries and machine produced a run."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("keras", "tensorflow", "jax", "torch", "numpy", "optuna", "mlflow", "scikit-learn")


def git_state(cwd: Path | None = None) -> dict[str, str]:
    """The commit of the fitscope checkout and whether its tree had local changes."""
    where = cwd or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):  # not a checkout (installed wheel) or no git
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def environment() -> dict[str, str]:
    """Python, packages, OS and CPU; the Keras backend and GPU are added by the caller."""
    from fitscope import __version__

    env = {
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": platform.processor() or platform.machine(),
        "fitscope": __version__,
    }
    env.update({f"{k}_version": v for k, v in package_versions().items()})
    return env


def study_tags(command: str) -> dict[str, str]:
    """Tags for a parent run: how to reproduce it and where it came from."""
    tags = {f"env.{k}": v for k, v in environment().items()}
    tags.update(git_state())
    tags["command"] = command[:5000] or " ".join(sys.argv)
    return tags

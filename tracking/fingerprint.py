"""Environment fingerprint: what code, libraries, machine and data produced a run.

Every MLflow run fitscope writes (study parent, trial child, rerun) carries these as tags, so a
rerun that differs can say which part of the environment changed. Everything but the command and
the data hash is computed once per process (`functools.cache`): a study logs hundreds of children.

Example:
    >>> tags = run_tags("fitscope search iris", data_sha256="ab12")  # doctest: +SKIP
    >>> tags["env.python"], tags["data_sha256"]  # doctest: +SKIP
    ('3.11.9', 'ab12')
"""

from __future__ import annotations

import functools
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from search.seeding import backend_versions

PACKAGES = ("keras", "tensorflow", "jax", "torch", "numpy", "optuna", "mlflow", "scikit-learn")
# Tags that describe the environment rather than the run: the ones a rerun compares.
FINGERPRINT_PREFIX = "env."
CODE_TAGS = ("git_commit", "git_dirty")
DATA_TAG = "data_sha256"


@functools.cache
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
    """Installed versions of the packages that shape results (absent ones are left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def environment() -> dict[str, str]:
    """Python, packages, Keras backend, OS, CPU and GPU (computed once per process).

    Example:
        >>> environment()["keras_backend"]  # doctest: +SKIP
        'tensorflow'
    """

    backend = backend_versions()
    env = {
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_name(),
        "gpu": gpu_name(backend["keras_backend"]),
        "fitscope": _project_version(),
        "keras_backend": backend["keras_backend"],
        "keras_backend_version": backend["keras_backend_version"],
    }
    env.update({f"{k}_version": v for k, v in package_versions().items()})
    return env


def run_tags(command: str, data_sha256: str | None = None) -> dict[str, str]:
    """Fingerprint tags of one run: `env.*`, git commit and dirty flag, command, data hash."""
    tags = {f"{FINGERPRINT_PREFIX}{k}": v for k, v in environment().items()}
    tags.update(git_state())
    tags["command"] = (command or " ".join(sys.argv))[:5000]
    if data_sha256:
        tags[DATA_TAG] = data_sha256
    return tags


def study_tags(command: str, data_sha256: str | None = None) -> dict[str, str]:
    """Tags for a parent run: how to reproduce it and where it came from."""
    return run_tags(command, data_sha256)


def fingerprint_of(tags: dict[str, str]) -> dict[str, str]:
    """The environment part of a run's tags (what a rerun compares)."""
    return {k: v for k, v in tags.items()
            if k.startswith(FINGERPRINT_PREFIX) or k in (*CODE_TAGS, DATA_TAG)}


def cpu_name() -> str:
    """The CPU model ("AMD EPYC 7B13"), not only the architecture platform.processor() gives."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine()


def gpu_name(backend: str) -> str:
    """The accelerator the Keras backend sees, else any NVIDIA GPU nvidia-smi names, else "none"."""
    names = _backend_gpus(backend)
    if names:
        return ", ".join(names)
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=10, check=True,
            ).stdout.split("\n")
        except (OSError, subprocess.SubprocessError):
            return "none"
        found = [line.strip() for line in out if line.strip()]
        if found:  # present, but the backend does not use it (CPU-only build)
            return f"{', '.join(found)} (not used by {backend})"
    return "none"


def _backend_gpus(backend: str) -> list[str]:
    # Each branch runs only on its own backend, which is imported already by then.
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [
                tf.config.experimental.get_device_details(d).get("device_name", d.name)
                for d in tf.config.list_physical_devices("GPU")
            ]
        if backend == "torch":
            import torch

            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            return [torch.cuda.get_device_name(i) for i in range(count)]
        if backend == "jax":
            import jax

            return [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    except (ImportError, RuntimeError, ValueError):  # a broken driver must not stop tracking
        return []
    return []


def _project_version() -> str:
    """fitscope's installed version (read from its metadata: tracking sits below the CLI
    package and must not import it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fitscope")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"

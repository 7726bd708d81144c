"""How N local workers share one machine: CPU threads split between them, one GPU each.

Each worker is a separate process, so the split is done with the environment variables the
backends read when they start (nothing can be changed once TensorFlow or XLA is running).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from common.errors import FitscopeError
from common.text import shown


@dataclass(frozen=True)
class WorkerSlot:
    """What worker `index` of `count` gets: its CPU threads and its GPU (None = CPU only)."""

    index: int
    count: int
    threads: int
    gpu: str | None

    def environment(self) -> dict[str, str]:
        """Variables to add to the worker's environment.

        Example:
            >>> env = WorkerSlot(0, 2, threads=1, gpu=None).environment()
            >>> env["TF_NUM_INTRAOP_THREADS"], env["CUDA_VISIBLE_DEVICES"]
            ('1', '-1')
        """
        threads = str(self.threads)
        env = {
            # intra-op pools of every backend and of NumPy's BLAS: cores / workers each, so
            # N workers do not run N x cores threads that fight over the same cores
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "TF_NUM_INTRAOP_THREADS": threads,
            "TF_NUM_INTEROP_THREADS": "1" if self.threads <= 2 else "2",
            # -1 hides every GPU: a CPU worker must not grab one another worker was given
            "CUDA_VISIBLE_DEVICES": self.gpu if self.gpu is not None else "-1",
            # several workers may share a GPU: take memory as needed, not all of it at start
            "TF_FORCE_GPU_ALLOW_GROWTH": "true",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "FITSCOPE_WORKER_INDEX": str(self.index),
        }
        # XLA's CPU pool (JAX) is left alone: its thread flags change between releases, and an
        # unknown one in XLA_FLAGS aborts the process
        return env


def plan_workers(
    count: int, gpus: list[str] | None = None, workers_per_gpu: int = 1, cores: int | None = None
) -> list[WorkerSlot]:
    """Assign threads and GPUs to `count` workers.

    GPUs are handed out round robin, `workers_per_gpu` neighbours on each: with gpus 0,1 and two
    per GPU, workers 0,1 use GPU 0 and workers 2,3 GPU 1. On CPU each worker gets cores / count
    threads (at least one).

    Example:
        >>> [(s.threads, s.gpu) for s in plan_workers(2, cores=4)]
        [(2, None), (2, None)]
        >>> [s.gpu for s in plan_workers(4, gpus=["0", "1"], workers_per_gpu=2)]
        ['0', '0', '1', '1']
    """
    cores = cores or available_cores()
    threads = max(1, cores // count)
    slots = []
    for index in range(count):
        gpu = gpus[(index // max(1, workers_per_gpu)) % len(gpus)] if gpus else None
        slots.append(WorkerSlot(index, count, threads, gpu))
    return slots


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and Slurm set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists.

    Example:
        >>> os.environ["CUDA_VISIBLE_DEVICES"] = "2,3"; visible_gpus()  # doctest: +SKIP
        ['2', '3']
    """
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        ids = [part.strip() for part in declared.split(",") if part.strip()]
        return [] if not ids or ids[0].startswith("-") else ids
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):  # no driver, or a broken one: use the CPU
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def parse_gpus(text: str | None) -> list[str] | None:
    """`--gpus 0,1` -> ['0', '1']; `none`/`cpu`/empty -> [] (CPU only); None -> not given.

    Raises:
        FitscopeError: an id that is neither an index nor a GPU/MIG UUID (CUDA would ignore it
            and the workers would train on the CPU without a word).
    """
    if text is None:
        return None
    if text.strip().lower() in ("", "none", "cpu", "-1"):
        return []
    ids = [part.strip() for part in text.split(",") if part.strip()]
    for gpu in ids:
        if not re.fullmatch(r"\d+|(GPU|MIG)-[0-9A-Za-z/-]+", gpu):
            raise FitscopeError(f"--gpus {shown(text)}: expected GPU ids like 0,1 (or none "
                                f"for the CPU), got {shown(gpu)}")
    return ids


def choose_gpus(text: str | None) -> list[str]:
    """The GPUs the workers get: `--gpus` (each id must be visible here), else all visible.

    Raises:
        FitscopeError: a malformed id, or one this machine does not show.
    """
    requested, visible = parse_gpus(text), visible_gpus()
    if requested is None:
        return visible
    missing = [gpu for gpu in requested if gpu not in visible]
    if missing:
        raise FitscopeError(f"--gpus {shown(text)}: GPU {', '.join(missing)} is not visible here "
                            f"(visible: {', '.join(visible) or 'none'}); --gpus none runs on "
                            "the CPU")
    return requested

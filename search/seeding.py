"""Seeds and determinism: every trial's randomness comes from the study seed and its number."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A per-trial seed derived from the study seed (SeedSequence mixes them, no collisions
    between neighbouring studies as with `seed + number`)."""
    state = np.random.SeedSequence([study_seed, trial_number]).generate_state(1)
    return int(state[0] % (2**31 - 1))


def sampler_seed(study_seed: int, trial_number: int) -> int:
    """The sampler's seed for one trial: from the study seed and the trial's number, which is how
    many trials the study held when it was created. A fresh one-worker study repeats trial by
    trial; a resumed study or a second process on it draws new candidates instead of replaying
    the first ones (a different stream than `trial_seed`, which seeds the training).

    Example:
        >>> sampler_seed(42, 0) != sampler_seed(42, 1) != sampler_seed(43, 0)
        True
    """
    state = np.random.SeedSequence([study_seed, trial_number, 1]).generate_state(1)
    return int(state[0] % (2**31 - 1))


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and the Keras backend; turn its deterministic kernels on or off.

    - TensorFlow: op determinism (`enable_op_determinism`), switched off again for a
      non-deterministic trial so the recorded `deterministic` param tells the truth.
    - PyTorch: `torch.use_deterministic_algorithms` and deterministic cuDNN.
    - JAX: deterministic on CPU already; on GPU XLA reads `--xla_gpu_deterministic_ops` when its
      backend starts, so the flag is added here and works when no JAX op ran in the process yet.

    Example:
        >>> seed_everything(7, deterministic=True)  # doctest: +SKIP
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax" and deterministic:
        _add_xla_flag("--xla_gpu_deterministic_ops=true")
    keras.utils.set_random_seed(seed)
    if backend == "tensorflow":
        _tensorflow_determinism(deterministic)
    elif backend == "torch":
        _torch_determinism(deterministic)


def _tensorflow_determinism(on: bool) -> None:
    import tensorflow as tf  # guarded by the caller: op determinism exists on TensorFlow only

    if on:
        tf.config.experimental.enable_op_determinism()
        return
    # The public API can only switch it on; a process that ran a deterministic trial before
    # (tests, a rerun) switches it off through the function behind it, where it exists.
    try:
        from tensorflow.python.framework import config as tf_config

        if tf_config.is_op_determinism_enabled():
            tf_config.disable_op_determinism()
    except (ImportError, AttributeError):
        log.warning("TensorFlow op determinism stays on in this process (cannot switch it off)")


def _torch_determinism(on: bool) -> None:
    import os

    import torch  # guarded by the caller: the torch backend only

    if on:
        # cuBLAS needs a fixed workspace for deterministic GEMMs (read when CUDA starts)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on  # autotuning picks kernels by timing: not repeatable


def _add_xla_flag(flag: str) -> None:
    import os

    flags = os.environ.get("XLA_FLAGS", "")
    if flag.split("=")[0] not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()


def backend_versions() -> dict[str, str]:
    """The Keras backend and its version, for the run's params and fingerprint."""
    import keras

    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    try:
        version = __import__(module).__version__
    except ImportError:  # numpy / openvino backends have no separate package to ask
        version = "unknown"
    return {"keras_backend": backend, "keras_backend_version": version, "keras": keras.__version__}

"""Seeds and determinism: every trial's randomness comes from the study seed and its number."""

from __future__ import annotations

import numpy as np


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A per-trial seed derived from the study seed (SeedSequence mixes them, no collisions
    between neighbouring studies as with `seed + number`)."""
    state = np.random.SeedSequence([study_seed, trial_number]).generate_state(1)
    return int(state[0] % (2**31 - 1))


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and the Keras backend; make TensorFlow ops deterministic if asked.

    TensorFlow's op determinism is process-wide and cannot be switched off again, so a
    process that ran a deterministic trial stays deterministic.
    """
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # guarded: op determinism exists on TensorFlow only

        tf.config.experimental.enable_op_determinism()


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

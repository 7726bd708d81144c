"""Choosing the Keras backend: KERAS_BACKEND is checked before Keras loads, and what a trial
records (and its rerun repeats) is what its fit used on that backend.

The suite runs where TensorFlow is the only backend installed (`.venv`); the JAX and PyTorch
runs themselves are measured by `python -m bench.backends` (docs/performance.md).
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from common.errors import BackendError, RerunError
from experiments.registry import load_spec
from fitscope import settings
from fitscope.cli import main
from fitscope.rerun import rerun_backend
from search.record import settings_attrs


def test_an_unknown_backend_is_one_line_before_keras_loads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "numpy")  # Keras has it, but it cannot train
    assert main(["search", "iris", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("fitscope: error: KERAS_BACKEND=numpy: fitscope trains on "
                           "tensorflow, jax or torch")
    # what loads no model answers whatever the environment names
    assert main(["show", "iris"]) == 0


def test_a_backend_is_refused_exactly_when_its_package_is_missing() -> None:
    # whatever this environment holds: each backend passes if installed, else names the extra
    for name in settings.KERAS_BACKENDS:
        if find_spec(name) is not None:
            settings.check_backend(name)
            continue
        with pytest.raises(BackendError, match=rf"^KERAS_BACKEND={name}, but {name} is not "
                           rf"installed .*pip install 'fitscope\[{name}\]'"):
            settings.check_backend(name)
    settings.check_backend("tensorflow")  # a dependency: always there


def test_requested_backend_reads_keras_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert settings.requested_backend() is None
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert settings.requested_backend() == "tensorflow"


@pytest.mark.parametrize(("backend", "steps", "pipeline"), [
    ("tensorflow", 16, "dataset"),
    ("jax", 16, "arrays"),  # `dataset` is a tf.data pipeline: the arrays off TensorFlow
    ("torch", 1, "arrays"),  # Keras's torch trainer runs one step per call
])
def test_a_trial_records_the_settings_its_backend_used(backend: str, steps: int,
                                                      pipeline: str) -> None:
    spec = load_spec("fashion")
    assert spec.train.steps_per_execution == 16 and spec.train.input_pipeline == "dataset"
    attrs = settings_attrs(spec, seed=1, study_seed=42,
                           backend={"keras_backend": backend, "keras_backend_version": "x"})
    assert attrs["keras_backend"] == backend
    assert attrs["steps_per_execution"] == steps
    assert attrs["input_pipeline"] == pipeline


def test_a_rerun_follows_the_recorded_backend_unless_one_is_chosen() -> None:
    # nothing chosen: the run's own backend is exported before Keras loads
    assert rerun_backend("tensorflow", None, "r1") == ("tensorflow", None)
    # a run from before the backend was recorded: Keras's default, no note
    assert rerun_backend(None, None, "r1") == (None, None)
    # chosen and the same: nothing to say
    assert rerun_backend("tensorflow", "tensorflow", "r1") == (None, None)
    # chosen and not the run's: it trains on the chosen one and says so
    export, note = rerun_backend("jax", "tensorflow", "r1")
    assert export is None
    assert note is not None and note.startswith(
        "note: run r1 trained on Keras backend jax; this rerun trains on tensorflow")
    assert "KERAS_BACKEND=jax repeats it" in note


def test_a_rerun_refuses_a_recorded_backend_it_cannot_load() -> None:
    with pytest.raises(RerunError, match=r"^cannot rerun run r1 on its Keras backend: "
                       r"keras_backend=openvino: fitscope trains on tensorflow, jax or torch; "
                       r"or choose another with KERAS_BACKEND"):
        rerun_backend("openvino", None, "r1")
    for name in ("jax", "torch"):
        if find_spec(name) is None:  # the usual test environment: TensorFlow only
            with pytest.raises(RerunError, match=rf"pip install 'fitscope\[{name}\]'"):
                rerun_backend(name, None, "r1")
        else:
            assert rerun_backend(name, None, "r1") == (name, None)

from __future__ import annotations

import numpy as np
import pytest

from experiments.tasks import task_kind
from search.builder import build_model, compile_model, make_optimizer
from search.params import TrialParams


def test_parameter_count_of_12_8_4_1() -> None:
    params = TrialParams(2, (8, 4), "relu", "adam", 1e-3, 32, 0.0)
    model = build_model(params, 12, task_kind("regression"), None)
    assert model.count_params() == 145  # (12*8+8) + (8*4+4) + (4*1+1)


def test_parameter_count_of_iris_baseline() -> None:
    params = TrialParams(3, (32, 32, 32), "relu", "adam", 1e-3, 32, 0.0)
    model = build_model(params, 4, task_kind("multiclass"), 3)
    assert model.count_params() == 2371  # 160 + 1056 + 1056 + 99


def test_dropout_adds_layers_but_no_parameters() -> None:
    params = TrialParams(2, (8, 4), "relu", "adam", 1e-3, 32, 0.25)
    model = build_model(params, 12, task_kind("regression"), None)
    assert model.count_params() == 145
    assert [layer.__class__.__name__ for layer in model.layers].count("Dropout") == 2


@pytest.mark.parametrize(
    ("task", "classes", "units", "activation"),
    [
        ("binary", 2, 1, "sigmoid"),
        ("multiclass", 10, 10, "softmax"),
        ("regression", None, 1, "linear"),
    ],
)
def test_heads_match_the_task(task: str, classes: int | None, units: int, activation: str) -> None:
    model = build_model(
        TrialParams(1, (4,), "tanh", "sgd", 0.1, 4, 0.0), 3, task_kind(task), classes
    )
    head = model.layers[-1]
    assert head.units == units
    assert head.activation.__name__ == activation


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", "SGD"),
        ("momentum", "SGD"),
        ("rmsprop", "RMSprop"),
        ("adam", "Adam"),
        ("adagrad", "Adagrad"),
    ],
)
def test_optimizers_get_the_sampled_learning_rate(name: str, cls: str) -> None:
    optimizer = make_optimizer(
        TrialParams(
            1, (4,), "relu", name, 0.0123, 8, 0.0, momentum=0.7 if name == "momentum" else None
        )
    )
    assert type(optimizer).__name__ == cls
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.0123)
    if name == "momentum":
        assert optimizer.momentum == pytest.approx(0.7)


def test_compiled_model_reports_metrics_by_name() -> None:
    params = TrialParams(1, (4,), "relu", "adam", 1e-2, 4, 0.0)
    task = task_kind("binary")
    model = build_model(params, 2, task, 2)
    compile_model(model, params, task)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    scores = model.evaluate(x, np.array([0, 1, 1, 0]), verbose=0, return_dict=True)
    assert set(scores) == {"loss", "accuracy"}

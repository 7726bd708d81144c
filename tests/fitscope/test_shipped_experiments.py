"""Every shipped experiment runs a one-trial smoke study on its real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.registry import shipped_specs
from fitscope.cli import main
from tests.conftest import mlflow_runs, write_spec

HEADLINE = {"regression": "test_rmse", "binary": "test_roc_auc", "multiclass": "test_accuracy"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n == "fashion" else n for n in shipped_specs()],
)
def test_one_trial_smoke_study(name: str, workdir: Path, tracking_uri: str) -> None:
    from experiments.registry import load_spec

    spec = write_spec(workdir, name, train__max_epochs=2, train__patience=2)
    assert main(["search", str(spec), "--trials", "1", "--tracking-uri", tracking_uri]) == 0
    parent, (child,) = mlflow_runs(tracking_uri, name)
    assert parent.info.status == "FINISHED"
    assert child.info.status == "FINISHED", child.data.tags.get("fail_reason")
    assert HEADLINE[load_spec(name).task] in child.data.metrics

"""Using a study's winner: `fitscope predict` on raw rows, the registered alias, and a real
`mlflow models serve` (issue 17). One small titanic study serves every test of the module."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from fitscope.cli import main
from tests.conftest import TABULAR, empty_mlflow_store, mlflow_runs, write_spec
from tests.processes import free_port, wait_until

RAW = TABULAR / "titanic_simple.csv"


@dataclass(frozen=True)
class Study:
    folder: Path
    spec: Path
    tracking: str


@pytest.fixture(scope="module")
def titanic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Study]:
    """A 2-trial, 3-epoch titanic study in its own folder and stores."""
    folder = tmp_path_factory.mktemp("predict")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name in ("MLFLOW_TRACKING_URI", "FITSCOPE_STORAGE", "FITSCOPE_REPORTS_DIR"):
            patch.delenv(name, raising=False)
        patch.setenv("FITSCOPE_RUNS_DIR", str(folder / "runs"))
        spec = write_spec(folder, "titanic", train__max_epochs=3, train__patience=2,
                          search__pruner="none")
        tracking = empty_mlflow_store(folder / "mlflow.db")
        assert main(["search", str(spec), "--trials", "2", "--tracking-uri", tracking]) == 0
        yield Study(folder, spec, tracking)


def _predict(study: Study, source: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["predict", "titanic", "--input", str(source), "--tracking-uri", study.tracking])
    return code, capsys.readouterr().err


def test_predict_on_raw_rows_matches_the_trial_model_on_preprocessed_arrays(
    titanic: Study, tmp_path: Path
) -> None:
    import keras

    from experiments.data import load_dataset
    from experiments.data.preprocess import fit_table
    from experiments.data.tables import read_table
    from fitscope import session

    spec = session.experiment_spec(str(titanic.spec))
    table = read_table(spec.data, None)
    test_rows = fit_table(table, spec.task, spec.data).test
    raw = pd.read_csv(RAW).iloc[test_rows].drop(columns=["Survived"])  # as in the file
    source, output = tmp_path / "new.csv", tmp_path / "predictions.csv"
    raw.to_csv(source, index=False)

    assert main(["predict", "titanic", "--input", str(source), "--output", str(output),
                 "--tracking-uri", titanic.tracking]) == 0

    predicted = pd.read_csv(output)
    assert list(predicted.columns) == ["prediction", "prob_0", "prob_1"]
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{titanic.folder / 'optuna.db'}")
    network = keras.saving.load_model(study.best_trial.user_attrs["model_path"])
    expected = network.predict(load_dataset(spec).x_test, verbose=0).reshape(-1)
    np.testing.assert_allclose(predicted["prob_1"], expected, rtol=1e-5, atol=1e-6)
    assert list(predicted["prediction"]) == [int(p >= 0.5) for p in expected]


def test_the_best_alias_resolves_to_the_best_trial_and_runs_say_what_they_are(
    titanic: Study,
) -> None:
    import mlflow

    client = MlflowClient(tracking_uri=titanic.tracking)
    parent, children = mlflow_runs(titanic.tracking, "titanic")
    version = client.get_model_version_by_alias("titanic", "best")
    assert version.tags["trial"] == parent.data.tags["best_trial_number"]
    assert version.tags["run"] == parent.data.tags["best_run_id"]
    assert version.tags["study"] == parent.data.tags["fitscope.study"]
    assert parent.data.tags["best_model_version"] == str(version.version)
    mlflow.set_tracking_uri(titanic.tracking)
    model = mlflow.pyfunc.load_model("models:/titanic@best")
    schema = model.metadata.get_input_schema()
    assert schema.required_input_names() == ["Pclass", "Sex", "Age", "Fare", "Embarked"]
    assert set(schema.optional_input_names()) == {"PassengerId", "Name"}
    # the MLflow UI opens it on its training runs; each run's name says what it trained
    experiment = client.get_experiment_by_name("titanic")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    for child in children:
        name, number = child.info.run_name, child.data.tags["trial_number"]
        assert name.startswith(f"t{number} ") and child.data.params["optimizer"] in name
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{titanic.folder / 'optuna.db'}")
    assert study.metric_names == ["val_loss"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["Age"]), "column 'Age' is missing"),
    (lambda f: f.assign(Cabin="C85"), "unknown column 'Cabin'"),
    (lambda f: f.assign(Fare="cheap"), "column 'Fare' must be numeric but holds 'cheap'"),
])
def test_bad_input_exits_2_with_one_line_naming_the_column(
    titanic: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str], change, message
) -> None:
    source = tmp_path / "bad.csv"
    change(pd.read_csv(RAW).head(5).drop(columns=["Survived"])).to_csv(source, index=False)
    code, err = _predict(titanic, source, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("fitscope")]
    assert lines == [lines[0]] and message in lines[0], err


def test_the_target_column_and_whole_numbers_are_accepted(
    titanic: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "rows.csv"
    rows = pd.read_csv(RAW).head(4).assign(Age=[22, 38, 26, 35])  # ints, target still there
    rows.to_csv(source, index=False)
    capsys.readouterr()
    assert main(["predict", "titanic", "--input", str(source),
                 "--tracking-uri", titanic.tracking]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "prediction,prob_0,prob_1" and len(out.splitlines()) == 5


def test_an_unknown_model_exits_2_with_what_to_do(
    titanic: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["predict", "nosuch", "--input", str(RAW), "--tracking-uri", titanic.tracking])
    err = capsys.readouterr().err
    assert code == 2 and "fitscope search nosuch" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # TensorFlow and MLflow's server start in a new process: ~30 s on 2 cores
def test_the_served_model_answers_json_on_localhost(
    titanic: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = pd.read_csv(RAW).head(3).drop(columns=["Survived"])
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    capsys.readouterr()
    assert main(["predict", "titanic", "--input", str(source),
                 "--tracking-uri", titanic.tracking]) == 0
    expected = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))

    port = free_port()
    log = tmp_path / "serve.log"
    # the venv's bin first: MLflow starts `uvicorn` from PATH, as in an activated venv
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": titanic.tracking, "PATH": path}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/titanic@best",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=titanic.folder, env=env, stdout=out, stderr=out,
                                  start_new_session=True)
    try:
        wait_until(lambda: _ping(port, server, log), f"mlflow models serve on {port}",
                   every=0.5)
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split",
                                                                      index=False))})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body.encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        bad = rows.drop(columns=["Age"])
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
            data=json.dumps({"dataframe_split": json.loads(bad.to_json(orient="split",
                                                                       index=False))}).encode())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 400 and "Age" in refused.value.read().decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    served = pd.DataFrame(answer["predictions"])
    assert [str(p) for p in served["prediction"]] == [str(p) for p in expected["prediction"]]
    np.testing.assert_allclose(served["prob_1"], expected["prob_1"], rtol=1e-6)


def _ping(port: int, server: subprocess.Popen[bytes], log: Path) -> bool:
    if server.poll() is not None:
        raise AssertionError(f"mlflow models serve exited:\n{log.read_text()}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False

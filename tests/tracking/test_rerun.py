"""`fitscope rerun` end to end: a real iris study, real retraining, a real MLflow store."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from experiments.data import clear_cache, load_dataset
from experiments.registry import load_spec
from fitscope.cli import main
from fitscope.rerun import as_written, spec_from_params
from tests.conftest import TABULAR, empty_mlflow_store, mlflow_runs, use_as_workdir, write_spec
from tests.processes import Fitscope
from tracking.study_runs import SPEC_ARTIFACT

FINGERPRINT = ("env.python", "env.keras_version", "env.keras_backend", "env.keras_backend_version",
               "env.tensorflow_version", "env.numpy_version", "env.optuna_version",
               "env.mlflow_version", "env.scikit-learn_version", "env.os", "env.cpu", "env.gpu",
               "env.fitscope", "git_commit", "git_dirty", "command", "data_sha256")


@dataclass(frozen=True)
class Study:
    folder: Path
    uri: str
    spec: Path
    parent: Any
    children: list[Any]


@pytest.fixture(scope="module")
def iris_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Study]:
    """One small iris study shared by the tests below (3 trials of 4 epochs)."""
    folder = tmp_path_factory.mktemp("iris-study")
    uri = empty_mlflow_store(folder / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        use_as_workdir(patch, folder)
        spec = write_spec(folder, "iris", train__max_epochs=4, train__patience=3,
                          search__pruner="none")
        assert main(["search", str(spec), "--trials", "3", "--tracking-uri", uri]) == 0
        parent, children = mlflow_runs(uri, "iris")
        yield Study(folder, uri, spec, parent, children)


def _rerun(study: Study, run_id: str, *extra: str) -> int:
    return main(["rerun", run_id, "--tracking-uri", study.uri, *extra])


def assert_gpu_tag_fits_this_machine(tag: str) -> None:
    """`env.gpu` names what TensorFlow uses here: "none" on a machine without a GPU, the
    device where TensorFlow sees one, "(not used by tensorflow)" where only nvidia-smi does."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        assert tag != "none" and "not used by" not in tag, tag
    elif shutil.which("nvidia-smi") is None:
        assert tag == "none"
    else:
        assert tag == "none" or tag.endswith("(not used by tensorflow)"), tag


def test_every_run_carries_the_environment_fingerprint(iris_study: Study) -> None:
    data_hash = load_dataset(load_spec(str(iris_study.spec))).sha256()
    for run in [iris_study.parent, *iris_study.children]:
        missing = [tag for tag in FINGERPRINT if not run.data.tags.get(tag)]
        assert not missing, f"{run.info.run_name} lacks {missing}"
        assert run.data.tags["data_sha256"] == data_hash
        assert_gpu_tag_fits_this_machine(run.data.tags["env.gpu"])
    for child in iris_study.children:
        assert child.data.params["deterministic"] == "True"
        assert child.data.params["split_seed"] == "42"
    storage = f"sqlite:///{iris_study.folder / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    assert summary.user_attrs["data_sha256"] == data_hash  # for a later `sync`
    artifacts = [a.path for a in MlflowClient(iris_study.uri).list_artifacts(
        iris_study.parent.info.run_id)]
    assert SPEC_ARTIFACT in artifacts


def test_a_trial_of_a_real_study_reruns_identical(iris_study: Study) -> None:
    # the third trial of its process, rerun by a process of its own: nothing this process
    # loaded, seeded or traced can make it repeat (the other reruns here run in-process)
    original = iris_study.children[2]
    rerun_process = Fitscope(["rerun", original.info.run_id, "--tracking-uri", iris_study.uri],
                             cwd=iris_study.folder)
    assert rerun_process.wait() == 0, rerun_process.output()
    out = rerun_process.stdout
    assert "verdict: identical (bitwise): loss, val_loss" in out
    assert "best_epoch" in out and "test_accuracy" in out
    assert "Keras backend tensorflow" in out  # the run's, which this process exported

    client = MlflowClient(iris_study.uri)
    exp = client.get_experiment_by_name("iris")
    assert exp is not None
    (rerun,) = client.search_runs(
        [exp.experiment_id], f"tags.rerun_of = '{original.info.run_id}'")
    assert rerun.data.tags["fitscope.role"] == "rerun"
    assert rerun.data.tags["mlflow.parentRunId"] == iris_study.parent.info.run_id
    assert rerun.info.run_id in out
    assert rerun.info.status == "FINISHED"
    for name in ("n_layers", "units_0", "learning_rate", "batch_size", "dropout", "seed",
                 "max_epochs", "patience", "deterministic", "split_seed"):
        assert rerun.data.params[name] == original.data.params[name], name
    for name in ("best_val_loss", "best_epoch", "test_accuracy", "test_loss"):
        assert rerun.data.metrics[name] == original.data.metrics[name], name
    curve = [m.value for m in client.get_metric_history(rerun.info.run_id, "val_loss")]
    assert curve == [m.value for m in client.get_metric_history(original.info.run_id, "val_loss")]
    assert all(rerun.data.tags.get(tag) for tag in FINGERPRINT)
    # the study still has one parent and its three trials: a rerun is no trial of it
    _, children = mlflow_runs(iris_study.uri, "iris")
    assert len(children) == 3


def test_the_spec_also_rebuilds_from_the_parent_params(iris_study: Study, tmp_path: Path) -> None:
    # parents written before spec.json existed: the flattened spec.* params must do
    from experiments.registry import parse_spec

    rebuilt = parse_spec(as_written(spec_from_params(iris_study.parent.data.params)))
    logged = MlflowClient(iris_study.uri).download_artifacts(
        iris_study.parent.info.run_id, SPEC_ARTIFACT, str(tmp_path))
    assert rebuilt == parse_spec(as_written(json.loads(Path(logged).read_text())))
    # the spec as the study ran it: the file's, with --trials 3 from the command line
    assert rebuilt == load_spec(str(iris_study.spec)).with_search(trials=3)


def test_rerun_refuses_an_unknown_run_id(
    iris_study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _rerun(iris_study, "0123456789abcdef0123456789abcdef") == 2
    err = capsys.readouterr().err
    assert "no MLflow run found for run '0123456789abcdef0123456789abcdef'" in err
    assert "Traceback" not in err


def test_rerun_refuses_a_study_parent_run(
    iris_study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    parent_id = iris_study.parent.info.run_id
    assert _rerun(iris_study, parent_id) == 2
    err = capsys.readouterr().err
    assert f"run {parent_id} is the parent run of study" in err
    assert "not a trial" in err


def test_rerun_refuses_a_run_with_a_param_removed(
    iris_study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.entities import Param

    client = MlflowClient(iris_study.uri)
    original = iris_study.children[0]
    tags = {k: v for k, v in original.data.tags.items() if k != "mlflow.runName"}
    copy = client.create_run(original.info.experiment_id, run_name="trial-copy", tags=tags)
    params = [Param(k, v) for k, v in original.data.params.items() if k != "learning_rate"]
    client.log_batch(copy.info.run_id, params=params)
    client.set_terminated(copy.info.run_id)
    assert _rerun(iris_study, copy.info.run_id) == 2
    err = capsys.readouterr().err
    assert "lacks the param(s) learning_rate" in err


def test_rerun_refuses_a_missing_tracking_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path / 'nowhere.db'}"
    assert main(["rerun", "abc", "--tracking-uri", uri]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.db").exists()  # and none was created


def _runs(study: Study, experiment: str, role: str) -> list[Any]:
    client = MlflowClient(study.uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    return client.search_runs([exp.experiment_id], f"tags.`fitscope.role` = '{role}'")


def test_rerun_refuses_when_the_data_file_changed(
    iris_study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the study's MLflow store (a fresh store costs seconds of migrations), another experiment
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # a name outside the data catalog and no data.sha256 in the spec: no file checksum stands
    # in the way, so fitscope's own check of the preprocessed arrays must catch the change
    shutil.copy(TABULAR / "boston.csv", data_dir / "houses.csv")
    spec = write_spec(tmp_path, "boston", data__path="houses.csv", data__sha256=None,
                      train__max_epochs=2, train__patience=2, search__pruner="none")
    assert main(["search", str(spec), "--trials", "1", "--tracking-uri", iris_study.uri,
                 "--data-dir", str(data_dir)]) == 0
    (child,) = _runs(iris_study, "boston", "trial")

    lines = (data_dir / "houses.csv").read_text().splitlines()
    fields = lines[1].split(",")
    fields[-1] = str(float(fields[-1]) + 1.0)  # one house a thousand dollars dearer
    (data_dir / "houses.csv").write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    clear_cache()  # this process loaded the old file; a new `fitscope rerun` process would not
    argv = ["rerun", child.info.run_id, "--tracking-uri", iris_study.uri, "--data-dir",
            str(data_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "data changed: the houses.csv data of experiment boston" in err

    # a file that is gone (or fails its sha256 check) is refused the same way, naming it
    (data_dir / "houses.csv").unlink()
    clear_cache()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "data changed or unavailable: cannot load the houses.csv data of experiment " \
        "boston" in err
    assert "houses.csv: not found" in err
    assert _runs(iris_study, "boston", "rerun") == []  # nothing logged for a refused rerun


def test_a_pruned_trial_replays_the_epochs_it_trained(
    iris_study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(
        tmp_path, "iris", name="iris-pruned", space={
            "n_layers": 1, "units": 8, "activation": "relu", "optimizer": ["adam", "sgd"],
            "learning_rate": [0.05, 1.0e-4], "batch_size": 32, "dropout": 0.0},
        train__max_epochs=8, train__patience=8, search__pruner="median",
        search__startup_trials=1, search__warmup_epochs=1,
    )
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="prune", storage=storage)
    study.enqueue_trial({"optimizer": "adam", "learning_rate": 0.05})
    study.enqueue_trial({"optimizer": "sgd", "learning_rate": 1.0e-4})
    assert main(["search", str(spec), "--trials", "2", "--study", "prune", "--storage", storage,
                 "--tracking-uri", iris_study.uri]) == 0
    (pruned,) = [r for r in _runs(iris_study, "iris-pruned", "trial")
                 if r.data.tags["state"] == "PRUNED"]
    epochs = int(pruned.data.metrics["epochs_trained"])
    assert epochs < 8
    capsys.readouterr()

    assert main(["rerun", pruned.info.run_id, "--tracking-uri", iris_study.uri]) == 0
    out = capsys.readouterr().out
    assert "verdict: identical" in out
    assert f"pruned after {epochs} epochs" in out
    (rerun,) = _runs(iris_study, "iris-pruned", "rerun")
    assert rerun.data.tags["rerun_of"] == pruned.info.run_id
    assert rerun.data.metrics["epochs_trained"] == epochs
    assert rerun.data.tags["rerun_epochs"] == str(epochs)


# --- issue 19: the exit codes of `fitscope rerun` through the CLI ---------------------------
# Shown to fail by breaking each once (undone at once): with "different" mapped to exit 0 in
# fitscope/commands/rerun.py the tampered copy exits 0; without the `kt_continues` refusal in
# fitscope/rerun.py the continued round is retrained (exit 0); with `--nondeterministic`
# ignored by fitscope/commands/search.py the run records deterministic True.


def _copy_of(client: MlflowClient, original: Any, tamper: str = "", drop: str = "",
             **extra_params: str) -> str:
    """A copy of a trial run (tags, params, every metric's history), with `tamper`'s epoch 1
    moved by 0.01 as if someone edited the recorded curve, the param `drop` left out and
    `extra_params` added."""
    from mlflow.entities import Metric, Param

    tags = {k: v for k, v in original.data.tags.items() if k != "mlflow.runName"}
    copy = client.create_run(original.info.experiment_id, run_name="trial-copy", tags=tags)
    metrics = []
    for name in original.data.metrics:
        for m in client.get_metric_history(original.info.run_id, name):
            value = m.value + 0.01 if (name, m.step) == (tamper, 1) else m.value
            metrics.append(Metric(name, value, m.timestamp, m.step))
    params = [Param(k, v) for k, v in {**original.data.params, **extra_params}.items()
              if k != drop]
    client.log_batch(copy.info.run_id, metrics=metrics, params=params)
    client.set_terminated(copy.info.run_id)
    return copy.info.run_id


def test_rerun_of_a_tampered_curve_exits_1(
    iris_study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(iris_study.uri)
    tampered = _copy_of(client, iris_study.children[1], tamper="val_loss")
    assert _rerun(iris_study, tampered) == 1
    out = capsys.readouterr().out
    assert "verdict: different" in out
    assert "val_loss" in out


def test_rerun_of_a_continued_hyperband_round_exits_2(
    iris_study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Hyperband round that went on from another trial's saved weights carries the param
    # kt_continues (its record's settings, logged as params like kt_trial_id: both are checked
    # in tests/search/test_kerastuner_engine.py). A real Hyperband study through the CLI costs
    # ~25 s; a copy of a trial with that param reaches the same refusal.
    client = MlflowClient(iris_study.uri)
    continued = _copy_of(client, iris_study.children[0], kt_trial_id="0003",
                         kt_continues="0001")
    assert _rerun(iris_study, continued) == 2
    err = capsys.readouterr().err
    assert f"run {continued} continued the weights of KerasTuner trial 0001" in err
    assert "Traceback" not in err
    reruns = client.search_runs([iris_study.children[0].info.experiment_id],
                                f"tags.rerun_of = '{continued}'")
    assert reruns == []  # refused before anything was trained or logged


def test_a_nondeterministic_run_reruns_and_says_so(
    iris_study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, "iris", name="iris-nondeterministic", train__max_epochs=2,
                      train__patience=2, search__pruner="none")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert main(["search", str(spec), "--trials", "1", "--nondeterministic",
                     "--tracking-uri", iris_study.uri]) == 0
    (child,) = _runs(iris_study, "iris-nondeterministic", "trial")
    assert child.data.params["deterministic"] == "False"
    capsys.readouterr()
    code = _rerun(iris_study, child.info.run_id)
    out = capsys.readouterr().out
    assert code in (0, 1), out  # its kernels need not repeat: either verdict is honest
    assert "deterministic false" in out  # the plan line says how it retrains
    hint = "the original ran with deterministic=false: its kernels need not repeat"
    assert (hint in out) == (code == 1), out  # and a difference is explained
    (rerun,) = _runs(iris_study, "iris-nondeterministic", "rerun")
    assert rerun.data.params["deterministic"] == "False"


def test_rerun_of_a_deleted_run_says_so(
    iris_study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    """It proceeded without a word (issue 18): the user may not know the run is in the trash."""
    client = MlflowClient(iris_study.uri)
    deleted = _copy_of(client, iris_study.children[0])
    client.delete_run(deleted)
    assert _rerun(iris_study, deleted) == 0
    out = capsys.readouterr().out
    assert f"note: run {deleted} is deleted in MLflow (restore it with `mlflow runs restore`)" \
        in out


def test_a_run_recorded_before_the_input_pipeline_setting_reruns_identical(
    iris_study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs older than the `input_pipeline` setting fed Keras the arrays (search/inputs.py);
    their reruns must too, or the shuffled batches, hence the curves, differ from epoch 1."""
    spec = write_spec(tmp_path, "iris", name="iris-arrays", train__max_epochs=2,
                      train__patience=2, train__input_pipeline="arrays", search__pruner="none")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert main(["search", str(spec), "--trials", "1", "--tracking-uri", iris_study.uri]) == 0
    (child,) = _runs(iris_study, "iris-arrays", "trial")
    assert child.data.params["input_pipeline"] == "arrays"
    assert iris_study.children[0].data.params["input_pipeline"] == "dataset"  # the default
    older = _copy_of(MlflowClient(iris_study.uri), child, drop="input_pipeline")
    capsys.readouterr()
    assert _rerun(iris_study, older) == 0, capsys.readouterr().out
    assert "verdict: identical" in capsys.readouterr().out


# --- issue 14 item 5: the Keras backend a rerun trains on -----------------------------------
def test_a_rerun_on_another_backend_than_the_runs_says_so(
    iris_study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    """This process runs Keras on TensorFlow (the study above imported it); a run recorded on
    JAX is retrained here on TensorFlow, with a note, not silently."""
    client = MlflowClient(iris_study.uri)
    on_jax = _copy_of(client, iris_study.children[0], keras_backend="jax")
    capsys.readouterr()
    _rerun(iris_study, on_jax)  # the copy holds TensorFlow's curves: the verdict is no matter
    out = capsys.readouterr().out
    assert (f"note: run {on_jax} trained on Keras backend jax; this rerun trains on tensorflow: "
            "other kernels and random streams, so expect a difference, not a bitwise match "
            "(KERAS_BACKEND=jax repeats it)") in out
    (rerun,) = client.search_runs([iris_study.children[0].info.experiment_id],
                                  f"tags.rerun_of = '{on_jax}'")
    assert rerun.data.params["keras_backend"] == "tensorflow"  # what it really trained on


def test_a_rerun_refuses_a_recorded_backend_it_cannot_load(iris_study: Study) -> None:
    # a new process, where Keras is not loaded yet: the run's backend would be exported, but
    # fitscope cannot train on it (Keras's openvino backend): one line, nothing trained or logged
    client = MlflowClient(iris_study.uri)
    odd = _copy_of(client, iris_study.children[1], keras_backend="openvino")
    process = Fitscope(["rerun", odd, "--tracking-uri", iris_study.uri], cwd=iris_study.folder)
    assert process.wait() == 2, process.output()
    assert (f"fitscope: error: cannot rerun run {odd} on its Keras backend: keras_backend="
            "openvino: fitscope trains on tensorflow, jax or torch; or choose another with "
            "KERAS_BACKEND (its numbers will differ)\n") in process.stderr
    assert "Traceback" not in process.stderr
    assert client.search_runs([iris_study.children[1].info.experiment_id],
                              f"tags.rerun_of = '{odd}'") == []

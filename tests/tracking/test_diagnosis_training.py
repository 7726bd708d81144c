"""The fit diagnosis on real training: a config built to produce each class gets that class.

Every config has early stopping out of reach (patience = max_epochs), so the curves show what
the network does, not where EarlyStopping cut it. Each was checked on seeds 1, 2 and 3 with a
wide margin over its threshold (numbers in the comments); the tests use seed 1.
"""

from __future__ import annotations

import math
from pathlib import Path

from analysis.diagnosis import Diagnosis, baseline_loss, diagnose
from experiments.data import load_dataset
from experiments.registry import load_spec
from experiments.spec import TrainSpec
from experiments.tasks import task_kind
from search.params import TrialParams

SEED = 1


def train_and_diagnose(
    experiment: str, params: TrialParams, epochs: int
) -> tuple[Diagnosis, dict[str, list[float]]]:
    """Fit `params` for exactly `epochs` epochs and diagnose the recorded curves."""
    import keras

    from search.callbacks import EpochRecorder
    from search.training import Diverged, fit_candidate

    spec = load_spec(experiment)
    data = load_dataset(spec)
    recorder = EpochRecorder()
    # steps_per_execution 16: the same maths with less Keras overhead per step
    train = TrainSpec(max_epochs=epochs, patience=epochs, steps_per_execution=16)
    try:
        fit_candidate(params, data, task_kind(spec.task), train, SEED, recorder=recorder)
    except Diverged:
        pass  # the recorder keeps the curves up to and including the NaN epoch
    finally:
        keras.backend.clear_session()
    history = recorder.history
    base = baseline_loss(spec.task, data.y_train, data.n_classes)
    return diagnose(history["loss"], history["val_loss"], base), history


def test_an_oversized_network_trained_long_overfits() -> None:
    # 2 x 256 units for ~570 passengers, Adam at 1e-2, 30 epochs: val loss bottoms out within a
    # few epochs, then climbs 21-34% (seeds 1-3) while train loss keeps falling
    big = TrialParams(2, (256, 256), "relu", "adam", 1e-2, 64, 0.0)
    d, history = train_and_diagnose("titanic", big, epochs=30)
    assert d.fit == "overfit", d.reason
    assert d.val_rise > 0.1 and d.epochs_after_best >= 10
    assert history["loss"][-1] < min(history["val_loss"])  # train kept improving past val


def test_a_tiny_network_with_a_tiny_rate_underfits() -> None:
    # 2 units, plain SGD at 1e-4, 5 epochs: train loss stays at 96-125% of predicting the prior
    tiny = TrialParams(1, (2,), "relu", "sgd", 1e-4, 32, 0.0)
    d, _ = train_and_diagnose("iris", tiny, epochs=5)
    assert d.fit == "underfit", d.reason
    assert d.train_vs_baseline > 0.8


def test_sgd_with_a_huge_rate_diverges() -> None:
    # targets in the hundreds, SGD at 50: the weights overflow within the first epoch
    wild = TrialParams(1, (8,), "relu", "sgd", 50.0, 4, 0.0)
    d, history = train_and_diagnose("bloodfat", wild, epochs=4)
    assert d.fit == "diverged", d.reason
    assert not all(math.isfinite(v) for v in history["loss"] + history["val_loss"])
    assert len(history["loss"]) == len(history["val_loss"])  # the NaN epoch is recorded


def test_a_sensible_config_is_a_good_fit() -> None:
    # 16 units, Adam at 1e-2, 20 epochs: converged and flat (rise <= 1%, gap 12-14% of val)
    sensible = TrialParams(1, (16,), "relu", "adam", 1e-2, 64, 0.0)
    d, _ = train_and_diagnose("titanic", sensible, epochs=20)
    assert d.fit == "good_fit", d.reason
    assert d.train_vs_baseline < 0.8


def test_a_diverged_fail_trial_run_is_tagged_diverged(workdir: Path, tracking_uri: str) -> None:
    """Through `fitscope search`: the FAIL trial's child run carries fit=diverged, its reason
    and the evidence numbers that exist (NaN ones are left out by MLflow logging)."""
    from fitscope.cli import main
    from tests.conftest import mlflow_runs, write_spec

    spec = write_spec(
        workdir, "bloodfat", space={
            "n_layers": 1, "units": 8, "activation": "relu", "optimizer": "sgd",
            "learning_rate": 50.0, "batch_size": 4, "dropout": 0.0},
        train__max_epochs=4, train__patience=4, search__pruner="none",
    )
    assert main(["search", str(spec), "--trials", "1", "--tracking-uri", tracking_uri]) == 0
    _, (child,) = mlflow_runs(tracking_uri, "bloodfat")
    assert child.data.tags["state"] == "FAIL"
    assert child.data.tags["fit"] == "diverged"
    assert "NaN/inf from epoch 0" in child.data.tags["fit_reason"]
    assert "epochs_after_best" in child.data.metrics


def test_a_trial_pruned_while_still_falling_is_stopped_early(
    workdir: Path, tracking_uri: str
) -> None:
    """Issue 16: the pruner cuts a slower learner while its curves still fall steeply; its run is
    tagged fit=stopped_early (filterable in MLflow), not underfit. Shown failing with the
    `stopped_by` branch of `analysis.diagnosis._classify` disabled (it reads underfit)."""
    import optuna
    from mlflow.tracking import MlflowClient

    from fitscope.cli import main
    from tests.conftest import mlflow_runs, write_spec

    spec = write_spec(
        workdir, "iris", name="iris-pruned", space={
            "n_layers": 1, "units": 8, "activation": "relu", "optimizer": "adam",
            "learning_rate": [0.05, 3.0e-3], "batch_size": 32, "dropout": 0.0},
        train__max_epochs=8, train__patience=8, search__pruner="median",
        search__startup_trials=1, search__warmup_epochs=1,
    )
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    study = optuna.create_study(study_name="prune", storage=storage)
    study.enqueue_trial({"learning_rate": 0.05})  # fast: sets the median the next one misses
    study.enqueue_trial({"learning_rate": 3.0e-3})  # ~10x slower, still falling when cut
    assert main(["search", str(spec), "--trials", "2", "--study", "prune", "--storage", storage,
                 "--tracking-uri", tracking_uri]) == 0
    _, children = mlflow_runs(tracking_uri, "iris-pruned")
    assert [c.data.tags["state"] for c in children] == ["COMPLETE", "PRUNED"]
    pruned = children[1]
    assert pruned.data.tags["fit"] == "stopped_early", pruned.data.tags["fit_reason"]
    assert pruned.data.tags["fit_reason"].startswith("the pruner stopped it after")
    client = MlflowClient(tracking_uri)
    found = client.search_runs([pruned.info.experiment_id], "tags.fit = 'stopped_early'")
    assert [r.info.run_id for r in found] == [pruned.info.run_id]

"""KerasTuner as a second search engine on the same spec: Hyperband, random or Bayesian search.

KerasTuner's three roles keep their jobs: its oracle decides what to try (`make_oracle`), the
hypermodel holds the space (`search.hypermodel`), and the tuner runs one trial
(`search.kerastuner_tuner.FitscopeTuner`) — with the Optuna engine's training, so both engines
train and score candidates identically. This module is the study loop, the counterpart of
`search.study.run_study`, and imports neither Keras nor KerasTuner until a search starts.

Where trials are recorded: each finished KerasTuner trial is added to an Optuna study
(`study.add_trial`) with the very user attrs the Optuna engine's `Objective` writes. That study
samples nothing; it is only the record store. It was chosen over a new engine-neutral study
handle because everything downstream already reads Optuna studies: the observers (MLflow
tracker, console, report), `record_from_trial`, `fitscope sync` and the Optuna dashboard work for
KerasTuner unchanged, and both engines' records live in one storage. The study's user attr
`engine_labels` tells the MLflow parent run which engine and tuner ran it.

KerasTuner's own state (oracle, trial files, Hyperband checkpoints) lives in
`runs/<experiment>/<study>/kerastuner/`; running the same command again resumes from it
(`overwrite=False`).

Example:
    >>> study = run_kerastuner(spec, data, settings, [tracker, console])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna

from common.errors import FitscopeError, SpecError, TrackingError
from experiments.tasks import task_kind
from search import record as trial_record
from search.storage import open_storage
from search.study import default_study_name, observed, trial_loop

if TYPE_CHECKING:
    import keras_tuner

    from experiments.data import Dataset
    from experiments.spec import ExperimentSpec
    from search.study import StudyObserver, StudySettings

ENGINE = trial_record.KERASTUNER
TUNERS = ("hyperband", "random", "bayesian")
# Like Optuna's catch=(Exception,): failed trials never end the study (KerasTuner's default is 3)
NEVER = 2**31 - 1


def require_kerastuner() -> None:
    """Fail with one clear line when KerasTuner (the `tuner` extra) is not installed.

    Raises:
        FitscopeError: keras_tuner or tensorboard cannot be found.
    """
    from importlib.util import find_spec

    # KerasTuner imports tensorboard on the TensorFlow backend
    missing = [name for name in ("keras_tuner", "tensorboard") if find_spec(name) is None]
    if missing:
        raise FitscopeError(
            f"the KerasTuner engine needs {' and '.join(missing)}: pip install 'fitscope[tuner]'"
            " (make install does)"
        )


def kerastuner_study_name(spec: ExperimentSpec, tuner: str) -> str:
    """`<experiment>-s<seed>-<spec hash>-kt-<tuner>`: never the Optuna engine's study.

    Example:
        >>> from experiments.registry import load_spec
        >>> kerastuner_study_name(load_spec("iris"), "hyperband").endswith("-kt-hyperband")
        True
    """
    return f"{default_study_name(spec)}-kt-{tuner}"


def engine_labels(tuner: str) -> dict[str, str]:
    """How a KerasTuner study searches, in the words of the MLflow parent's params and tags.

    Example:
        >>> engine_labels("hyperband")["pruner"]
        'hyperband'
    """
    sampler = {"hyperband": "random", "random": "random", "bayesian": "gaussian-process"}
    return {
        "engine": ENGINE,
        "tuner": tuner,
        "sampler": sampler[tuner],
        # Hyperband's successive halving is the only early stop of configurations here
        "pruner": "hyperband" if tuner == "hyperband" else "none",
    }


def make_oracle(tuner: str, spec: ExperimentSpec, seed: int) -> keras_tuner.Oracle:
    """KerasTuner's oracle for `tuner`, minimising val_loss (the best epoch's, as in Optuna).

    No `max_trials`: the trial count and the wall-clock budget are enforced by `FitscopeTuner`,
    per invocation, as the Optuna engine does.
    """
    import keras_tuner

    common: dict[str, Any] = {
        "objective": keras_tuner.Objective("val_loss", direction="min"),
        # KerasTuner replaces a seed of 0 by a random one, and Bayesian search needs seed >= 0
        "seed": seed % NEVER or NEVER,
        "max_retries_per_trial": 0,
        "max_consecutive_failed_trials": NEVER,
    }
    if tuner == "hyperband":
        # factor 3 like the Optuna engine's HyperbandPruner; iterations unlimited (None): the
        # trial count and the budget end the search, not the end of a Hyperband sweep
        return keras_tuner.oracles.HyperbandOracle(
            max_epochs=spec.train.max_epochs, factor=3, hyperband_iterations=None, **common
        )
    if tuner == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=None, **common)
    if tuner == "bayesian":
        # as many random start-up points as TPE has (0 lets KerasTuner pick 3 x dimensions)
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=None, num_initial_points=spec.search.startup_trials or None, **common
        )
    raise ValueError(f"unknown tuner {tuner!r}; expected one of {', '.join(TUNERS)}")


def refuse_multi_objective(spec: ExperimentSpec) -> None:
    """KerasTuner's oracles rank trials by one objective: a multi-objective spec is refused
    rather than searched on val_loss alone under a name that promises a Pareto front.

    Raises:
        SpecError: the spec lists `search.objectives`.
    """
    if spec.search.objectives:
        raise SpecError(
            f"search.objectives: the KerasTuner engine searches one objective (val_loss), not "
            f"{', '.join(spec.search.objective_names)}; use the Optuna engine (the default)"
        )


def open_record_study(spec: ExperimentSpec, settings: StudySettings, tuner: str) -> optuna.Study:
    """The Optuna study that records this KerasTuner search (created, or loaded to resume).

    Raises:
        SpecError: the spec is multi-objective (see `refuse_multi_objective`).
        TrackingError: the name belongs to a study of another experiment, engine or tuner.
    """
    refuse_multi_objective(spec)
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=open_storage(settings.storage),
        direction="minimize",
        load_if_exists=True,
    )
    trial_record.check_experiment(study, spec.name)
    attrs = study.user_attrs
    if trial_record.EXPERIMENT not in attrs:
        study.set_user_attr(trial_record.EXPERIMENT, spec.name)
        study.set_user_attr(trial_record.SPEC, spec.model_dump(mode="json"))
        study.set_user_attr(trial_record.SEED, settings.seed)
        study.set_user_attr(trial_record.ENGINE, ENGINE)
        study.set_user_attr(trial_record.TUNER, tuner)
        study.set_user_attr(trial_record.ENGINE_LABELS, engine_labels(tuner))
    elif (attrs.get(trial_record.ENGINE), attrs.get(trial_record.TUNER)) != (ENGINE, tuner):
        owner = attrs.get(trial_record.ENGINE, "optuna") + (
            f" {attrs[trial_record.TUNER]}" if trial_record.TUNER in attrs else "")
        raise TrackingError(
            f"study {settings.study_name} holds trials of the {owner} engine; KerasTuner "
            f"{tuner} cannot add to it: choose another --study"
        )
    return study


def run_kerastuner(
    spec: ExperimentSpec,
    data: Dataset,
    settings: StudySettings,
    observers: list[StudyObserver],
    tuner: str = "hyperband",
    study: optuna.Study | None = None,
) -> optuna.Study:
    """Add up to `settings.trials` KerasTuner trials within `settings.timeout`, telling every
    observer as they finish, as `search.study.run_study` does for Optuna.

    Re-raises KeyboardInterrupt after the interrupted trial is recorded FAIL and every observer
    has closed what it opened.
    """
    import keras

    from search.hypermodel import SpaceHyperModel
    from search.kerastuner_tuner import FitscopeTuner

    study = study or open_record_study(spec, settings, tuner)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    hypermodel = SpaceHyperModel(
        spec.space, task_kind(spec.task), data.n_features, data.n_classes,
        spec.train.steps_per_execution,
    )
    # built before the observers start: KerasTuner reloads (or discovers) its space here
    runner = FitscopeTuner(make_oracle(tuner, spec, settings.seed), hypermodel, spec, data,
                           settings, study, observers, tuner)
    keras.backend.clear_session()  # discovering the space built a few models
    with observed(study, spec, observers), trial_loop():
        runner.search(verbose=0)  # fitscope's console reports; KerasTuner's display is off
    return study

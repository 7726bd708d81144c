"""One KerasTuner trial, run with fitscope's training and recorded like an Optuna trial.

`FitscopeTuner` is a `keras_tuner.Tuner` whose `run_trial` calls
`search.training.fit_candidate` (the Optuna engine's seeds, EarlyStopping with restored best
weights, TerminateOnNaN, test evaluation on the best weights) and whose `on_trial_end` adds the
trial's record to the record study (see `search.kerastuner_engine`) and tells the observers.

Hyperband: a trial that continues a configuration (`tuner/trial_id`) starts from the weights and
optimizer state its predecessor ended with and trains `tuner/epochs - tuner/initial_epoch`
epochs. Its record holds its own epochs; `kt_continues` names the trial it started from.
"""

from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner
import optuna

from common.text import last_line
from experiments.tasks import task_kind
from search import record as trial_record
from search.callbacks import EpochRecorder
from search.hypermodel import SpaceHyperModel, replay
from search.record import fit_attrs, is_best_so_far, record_from_trial
from search.seeding import trial_seed
from search.study import Objective, describe_failure, worker_id

if TYPE_CHECKING:
    from experiments.data import Dataset
    from experiments.spec import ExperimentSpec
    from search.study import StudyObserver, StudySettings
    from search.training import FitResult

PROJECT = "kerastuner"  # KerasTuner's project folder inside the study's runs dir
COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED


class LoadWeights(keras.callbacks.Callback):
    """Starts training from saved weights: a Hyperband round continues the previous round's model.

    Loaded when training begins, after `fit_candidate` has seeded, built and compiled the model,
    so the fit code needs no special case. The optimizer is built first so that its state
    (momentum, Adam's moments) is restored too and training goes on as if it had not stopped;
    KerasTuner's own Hyperband restores the layer weights only.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.path)


@dataclass
class _Outcome:
    """What one KerasTuner trial produced, until it is written to the record study."""

    kt_trial_id: str
    started: datetime.datetime
    recorder: EpochRecorder = field(default_factory=EpochRecorder)
    params: dict[str, Any] = field(default_factory=dict)  # flat, fixed values included
    searched: optuna.trial.FixedTrial | None = None  # Optuna params and distributions
    settings: dict[str, Any] = field(default_factory=dict)
    result: FitResult | None = None
    model_path: str | None = None
    fail_reason: str | None = None


class FitscopeTuner(keras_tuner.Tuner):
    """Runs KerasTuner trials with fitscope's training and records them like the Optuna engine.

    The oracle decides what to try; `run_trial` fits it with `fit_candidate`; `on_trial_end`
    adds the trial's record to the record study and tells the observers. Before each new trial,
    `pre_create_trial` stops the search once the invocation's trial count or wall-clock budget
    is spent (KerasTuner has no time budget of its own).
    """

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        hypermodel: SpaceHyperModel,
        spec: ExperimentSpec,
        data: Dataset,
        settings: StudySettings,
        study: optuna.Study,
        observers: list[StudyObserver],
        tuner: str,
    ) -> None:
        super().__init__(
            oracle=oracle, hypermodel=hypermodel, directory=str(settings.runs_dir),
            project_name=PROJECT, overwrite=False,
        )
        self.spec = spec
        self.data = data
        self.settings = settings
        self.study = study
        self.observers = observers
        self.kind = tuner
        # the Optuna engine's per-trial settings, so both engines record the same keys
        self.objective = Objective(spec, data, settings)
        self.started = 0  # trials this invocation started
        # this process is the record study's only writer (one KerasTuner search per study), so
        # the next trial's number is a running count: no rescan of the study per trial
        self.recorded = len(study.get_trials(deepcopy=False))
        self.clock = time.monotonic()
        self.outcome: _Outcome | None = None

    # --- when to stop ------------------------------------------------------------------
    def on_search_begin(self) -> None:
        self.started, self.clock = 0, time.monotonic()

    def pre_create_trial(self) -> None:
        if self.started and self._spent():
            # KerasTuner's own way to end a search: the oracle answers STOPPED once
            # max_trials trials exist (it keeps no max_trials in its saved state)
            self.oracle.max_trials = len(self.oracle.trials)

    def _spent(self) -> bool:
        # like Optuna's optimize(n_trials, timeout): checked before starting a trial, never
        # interrupting one, and the first trial of an invocation always runs
        trials, timeout = self.settings.trials, self.settings.timeout
        if self.started >= trials:
            return True
        return timeout is not None and time.monotonic() - self.clock >= timeout

    # --- one trial ---------------------------------------------------------------------
    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_begin(trial)
        self.started += 1
        self.outcome = _Outcome(trial.trial_id, datetime.datetime.now())

    def run_trial(
        self, trial: keras_tuner.engine.trial.Trial, *args: Any, **kwargs: Any
    ) -> dict[str, float]:
        from search.training import Diverged, fit_candidate

        outcome = self.outcome or _Outcome(trial.trial_id, datetime.datetime.now())
        values = trial.hyperparameters.values
        try:
            params, outcome.searched = replay(values, self.spec.space)
            outcome.params = params.flat()
            seed = trial_seed(self.settings.seed, int(trial.trial_id))
            epochs = self._epochs(values)
            outcome.settings = {**self.objective.trial_settings(seed), "max_epochs": epochs,
                                **self._engine_settings(trial.trial_id, values)}
            callbacks: list[keras.callbacks.Callback] = []
            if "tuner/trial_id" in values:
                callbacks.append(LoadWeights(self._get_checkpoint_fname(values["tuner/trial_id"])))
            outcome.result = fit_candidate(
                params, self.data, task_kind(self.spec.task),
                self.spec.train.model_copy(update={"max_epochs": epochs}), seed,
                callbacks=callbacks, recorder=outcome.recorder,
                verbose=2 if self.settings.verbose else 0,
            )
            self._save(trial.trial_id, outcome)
            return {"val_loss": outcome.result.best_val_loss}
        except KeyboardInterrupt:
            # KerasTuner's on_trial_end never runs for it; record it now (FAIL, as Optuna does)
            # and let KerasTuner rerun the configuration when the search resumes
            outcome.fail_reason = "interrupted (Ctrl-C)"
            self._record(outcome, "FAIL")
            raise
        except Diverged as exc:
            outcome.fail_reason = str(exc)
            raise keras_tuner.errors.FailedTrialError(outcome.fail_reason) from exc
        except Exception as exc:  # any other failure ends this trial only; the study goes on
            outcome.fail_reason = describe_failure(exc)
            raise keras_tuner.errors.FailedTrialError(outcome.fail_reason) from exc
        finally:
            keras.backend.clear_session()

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_end(trial)  # the oracle scores the trial; KerasTuner saves its state
        outcome = self.outcome or _Outcome(trial.trial_id, datetime.datetime.now())
        self.outcome = None
        done = self.oracle.get_trial(trial.trial_id)
        complete = done.status == COMPLETED
        if not complete and outcome.fail_reason is None:
            outcome.fail_reason = last_line(done.message) or f"KerasTuner: {done.status}"
        self._record(outcome, "COMPLETE" if complete and outcome.result else "FAIL")

    def _epochs(self, values: dict[str, Any]) -> int:
        # Hyperband: train from the previous round's epochs up to this round's, as KerasTuner's
        # fit(epochs=tuner/epochs, initial_epoch=tuner/initial_epoch) would
        if "tuner/epochs" in values:
            return int(values["tuner/epochs"]) - int(values.get("tuner/initial_epoch", 0))
        return self.spec.train.max_epochs

    def _engine_settings(self, trial_id: str, values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "engine": trial_record.KERASTUNER, "tuner": self.kind, "kt_trial_id": trial_id}
        names = {"tuner/epochs": "kt_epochs", "tuner/initial_epoch": "kt_initial_epoch",
                 "tuner/bracket": "kt_bracket", "tuner/round": "kt_round",
                 # the trial whose weights this one continues: its curve starts where that ended
                 "tuner/trial_id": "kt_continues"}
        out.update({name: values[key] for key, name in names.items() if key in values})
        return out

    def _save(self, trial_id: str, outcome: _Outcome) -> None:
        result = outcome.result
        assert result is not None
        if self.kind == "hyperband":  # the next round of this configuration starts from these
            result.model.save_weights(self._get_checkpoint_fname(trial_id))
        if is_best_so_far(self.study, result.best_val_loss):
            # only candidates that beat the study's best are saved: the parent run logs the best
            path = self.settings.runs_dir / f"kt-trial-{trial_id}.keras"
            result.model.save(path)
            outcome.model_path = str(path.resolve())
        result.model = None  # the record keeps numbers only

    # --- the record ----------------------------------------------------------------------
    def _record(self, outcome: _Outcome, state: str) -> None:
        """Add the trial to the record study and tell every observer."""
        frozen = _frozen_trial(outcome, state)
        self.study.add_trial(frozen)
        frozen.number = self.recorded  # the number the storage gave it (see __init__)
        self.recorded += 1
        record = record_from_trial(frozen)
        for observer in self.observers:
            observer.on_trial_end(self.study, record)


def _frozen_trial(outcome: _Outcome, state: str) -> optuna.trial.FrozenTrial:
    """The Optuna trial holding a KerasTuner trial's record, as `Objective` would have left it."""
    result = outcome.result
    history = outcome.recorder.history
    attrs: dict[str, Any] = {
        trial_record.PARAMS: outcome.params,
        trial_record.SETTINGS: outcome.settings,
        trial_record.WORKER: worker_id(),
        trial_record.HISTORY: history,
    }
    if result is not None and state == "COMPLETE":
        attrs.update(fit_attrs(result, outcome.model_path))
    if outcome.fail_reason and state == "FAIL":
        attrs[trial_record.FAIL_REASON] = outcome.fail_reason
    searched = outcome.searched
    frozen = optuna.trial.create_trial(
        state=optuna.trial.TrialState[state],
        value=result.best_val_loss if result is not None and state == "COMPLETE" else None,
        params=dict(searched.params) if searched else {},
        distributions=dict(searched.distributions) if searched else {},
        user_attrs={k: v for k, v in attrs.items() if v is not None},
        intermediate_values={
            epoch: value for epoch, value in enumerate(history.get("val_loss", []))
            if math.isfinite(value)
        },
    )
    frozen.datetime_start = outcome.started  # the record's duration is the trial's
    return frozen

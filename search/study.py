"""The study loop: ask -> fit one candidate -> tell, with tracking attached as observers.

Pruned trials end PRUNED, diverged and crashed trials FAIL with their reason, and nothing is
replaced by a fake value. Observers (MLflow, the terminal) see every finished trial.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import optuna

from search.record import TrialRecord, record_from_trial
from search.seeding import backend_versions, trial_seed
from search.space import sample_params
from search.storage import open_storage
from search.training import Diverged, fit_candidate

if TYPE_CHECKING:
    from experiments.data import Dataset
    from experiments.spec import ExperimentSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudySettings:
    """Per-invocation choices: which study, where it is stored, how much to add to it."""

    study_name: str
    storage: str
    trials: int  # trials this invocation adds
    timeout: float | None
    seed: int
    runs_dir: Path  # best-model files of this study
    verbose: bool = False
    command: str = ""


class StudyObserver(Protocol):
    """Something that watches a study: MLflow tracking, the terminal, a report."""

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None: ...

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None: ...

    def on_study_end(self, study: optuna.Study, outcome: str) -> None: ...


def default_study_name(spec: ExperimentSpec) -> str:
    """`<experiment>-s<seed>-<spec hash>`: the same spec and seed resume the same study, and a
    changed space starts a new one instead of mixing incomparable trials."""
    return f"{spec.name}-s{spec.search.seed}-{spec.fingerprint()}"


def make_sampler(spec: ExperimentSpec, seed: int) -> optuna.samplers.BaseSampler:
    if spec.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # group=True lets multivariate TPE model the conditional units_i/momentum dimensions jointly
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=spec.search.startup_trials, multivariate=True, group=True
    )


def make_pruner(spec: ExperimentSpec) -> optuna.pruners.BasePruner:
    search = spec.search
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=search.startup_trials, n_warmup_steps=search.warmup_epochs
        )
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, search.warmup_epochs), max_resource=spec.train.max_epochs,
            reduction_factor=3,
        )
    return optuna.pruners.NopPruner()


def open_study(spec: ExperimentSpec, settings: StudySettings) -> optuna.Study:
    """Create the study, or load it to add trials when the name exists (resume)."""
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=open_storage(settings.storage),
        sampler=make_sampler(spec, settings.seed),
        pruner=make_pruner(spec),
        direction="minimize",
        load_if_exists=True,
    )
    if "experiment" not in study.user_attrs:
        study.set_user_attr("experiment", spec.name)
        study.set_user_attr("spec", spec.model_dump(mode="json"))
        study.set_user_attr("seed", settings.seed)
    return study


@dataclass
class Objective:
    """Fits one candidate per trial and keeps its whole record in the trial's user attrs."""

    spec: ExperimentSpec
    data: Dataset
    settings: StudySettings
    backend: dict[str, str] = field(default_factory=backend_versions)

    def __call__(self, trial: optuna.Trial) -> float:
        import keras

        from experiments.tasks import task_kind

        params = sample_params(trial, self.spec.space)
        seed = trial_seed(self.settings.seed, trial.number)
        trial.set_user_attr("params", params.flat())
        trial.set_user_attr("settings", self._settings(seed))
        trial.set_user_attr("worker", worker_id())
        callbacks: list[Any] = []
        if self.spec.search.pruner != "none":
            from optuna_integration import KerasPruningCallback

            callbacks.append(KerasPruningCallback(trial, "val_loss"))
        from search.callbacks import EpochRecorder

        recorder = EpochRecorder(lambda _epoch, history: trial.set_user_attr("history", history))
        try:
            result = fit_candidate(
                params, self.data, task_kind(self.spec.task), self.spec.train, seed,
                callbacks=callbacks, recorder=recorder, verbose=2 if self.settings.verbose else 0,
            )
            self._keep(trial, result)
            return result.best_val_loss
        except optuna.TrialPruned:
            raise
        except Diverged as exc:
            trial.set_user_attr("fail_reason", str(exc))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            raise
        except Exception as exc:  # any other failure ends this trial only; the study goes on
            trial.set_user_attr("fail_reason", describe_failure(exc))
            raise
        finally:
            keras.backend.clear_session()

    def _settings(self, seed: int) -> dict[str, Any]:
        train = self.spec.train
        return {
            "seed": seed,
            "max_epochs": train.max_epochs,
            "patience": train.patience,
            "deterministic": train.deterministic,
            "steps_per_execution": train.steps_per_execution,
            "study_seed": self.settings.seed,
            **self.backend,
        }

    def _keep(self, trial: optuna.Trial, result: Any) -> None:
        attrs = {
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "n_params": result.n_params,
            "train_seconds": result.train_seconds,
            "test": result.test,
            "model_summary": result.model_summary,
            "confusion_matrix": result.confusion_matrix,
            "classification_report": result.classification_report,
        }
        if self._is_best_so_far(trial.study, result.best_val_loss):
            # only candidates that beat the study's best are saved: the parent run logs the best
            self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
            path = self.settings.runs_dir / f"trial-{trial.number:05d}.keras"
            result.model.save(path)
            attrs["model_path"] = str(path.resolve())
        for key, value in attrs.items():
            if value is not None:
                trial.set_user_attr(key, value)

    @staticmethod
    def _is_best_so_far(study: optuna.Study, value: float) -> bool:
        try:
            return value < study.best_value
        except ValueError:  # no completed trial yet
            return True


def worker_id() -> str:
    """host:pid of this process: which worker ran a trial."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def describe_failure(exc: BaseException) -> str:
    """One line saying why a trial failed; out-of-memory is named as such."""
    name = type(exc).__name__
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    if isinstance(exc, MemoryError) or "ResourceExhausted" in name or "out of memory" in text.lower():
        return f"out of memory: {name}: {text}"
    return f"{name}: {text}" if text else name


def run_study(
    spec: ExperimentSpec,
    data: Dataset,
    settings: StudySettings,
    observers: list[StudyObserver],
    study: optuna.Study | None = None,
) -> optuna.Study:
    """Add `settings.trials` trials to the study, telling every observer as they finish.

    Re-raises KeyboardInterrupt after the interrupted trial is marked FAIL and every observer
    has closed what it opened.
    """
    study = study or open_study(spec, settings)
    for observer in observers:
        observer.on_study_start(study, spec)

    def tell_observers(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        record = record_from_trial(trial)
        for observer in observers:
            observer.on_trial_end(study, record)

    outcome = "failed"
    try:
        study.optimize(
            Objective(spec, data, settings),
            n_trials=settings.trials,
            timeout=settings.timeout,
            catch=(Exception,),
            callbacks=[tell_observers],
            gc_after_trial=False,  # clear_session() already frees the graph; gc costs ~0.3 s
        )
        outcome = "finished"
    except KeyboardInterrupt:
        outcome = "interrupted"
        raise
    finally:
        for observer in observers:
            observer.on_study_end(study, outcome)
    return study

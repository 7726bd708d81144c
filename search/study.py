"""The study loop: ask -> fit one candidate -> tell, with tracking attached as observers.

Pruned trials end PRUNED, diverged and crashed trials FAIL with their reason, and nothing is
replaced by a fake value. Observers (MLflow, the terminal) see every finished trial.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import optuna

from common.errors import TrackingError
from common.masking import mask_url
from common.text import first_line
from experiments.tasks import task_kind
from search import record as trial_record
from search.batched_attrs import set_user_attrs
from search.inputs import release_tensors
from search.interrupts import (
    STORAGE_MODULES,
    InterruptGuard,
    hides_interrupt,
    interrupt_reason,
    raise_if_interrupted,
)
from search.objectives import check_objectives, objective_values
from search.record import TrialRecord, fit_attrs, is_best_so_far, record_from_trial, settings_attrs
from search.seeding import backend_versions, sampler_seed, trial_seed
from search.space import sample_params
from search.storage import open_storage

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


def make_sampler(
    spec: ExperimentSpec, seed: int, constant_liar: bool = False
) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded per trial from the study seed and the trial's number (see
    TrialSeededSampler). `constant_liar` (parallel workers): TPE treats trials other workers
    are running as bad ones, so workers do not all pick the same promising region."""

    def build(seed: int) -> optuna.samplers.BaseSampler:
        if spec.search.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        # group=True lets multivariate TPE model the conditional units_i/momentum dimensions
        # jointly
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=spec.search.startup_trials,
            multivariate=True,
            group=True,
            constant_liar=constant_liar,
        )

    return TrialSeededSampler(build, seed)


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """A sampler reseeded for every trial from the study seed and the trial's number.

    One sampler seeded once per process replays its sequence in every process: a resumed study
    (`sampler: random`) re-ran the trials it already had, TPE's startup points repeated, and two
    processes on one study drew identical candidates. Trial numbers are unique in a study, so
    each trial draws from its own stream, and a fresh one-worker study still repeats trial by
    trial. The samplers keep no other state between trials (TPE reads the study's history).
    """

    def __init__(self, build: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._build = build
        self._seed = seed
        self._current = build(seed)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._current = self._build(sampler_seed(self._seed, trial.number))
        self._current.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return self._current.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return self._current.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        return self._current.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._current.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._current.reseed_rng()


def make_pruner(spec: ExperimentSpec) -> optuna.pruners.BasePruner:
    search = spec.search
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=search.startup_trials, n_warmup_steps=search.warmup_epochs
        )
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, search.warmup_epochs),
            max_resource=spec.train.max_epochs,
            reduction_factor=3,
        )
    return optuna.pruners.NopPruner()


def open_study(
    spec: ExperimentSpec,
    settings: StudySettings,
    storage: optuna.storages.BaseStorage | None = None,
) -> optuna.Study:
    """Create the study, or load it to add trials when the name exists (resume).

    `storage` defaults to `open_storage(settings.storage)`; workers pass one with their own
    heartbeat and stale-trial callback.
    """
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=storage or open_storage(settings.storage),
        sampler=make_sampler(spec, settings.seed),
        pruner=make_pruner(spec),
        directions=spec.search.directions,  # one per objective; loading keeps the stored ones
        load_if_exists=True,
    )
    trial_record.check_experiment(study, spec.name)
    names = list(spec.search.objective_names)
    # optuna-dashboard then says val_loss, not "Objective 0"; a resumed multi-objective study
    # is told apart from a single-objective one by these names
    if study.metric_names is None and len(study.directions) == len(names):
        study.set_metric_names(names)
    check_objectives(study, spec)
    if trial_record.EXPERIMENT not in study.user_attrs:
        study.set_user_attr(trial_record.EXPERIMENT, spec.name)
        study.set_user_attr(trial_record.SPEC, spec.model_dump(mode="json"))
        study.set_user_attr(trial_record.SEED, settings.seed)
    return study


@dataclass
class Objective:
    """Fits one candidate per trial and keeps its whole record in the trial's user attrs."""

    spec: ExperimentSpec
    data: Dataset
    settings: StudySettings
    backend: dict[str, str] = field(default_factory=backend_versions)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        # search.training is imported here, not at the top: it loads TensorFlow (~7 s), and the
        # CLI must be able to open a study and reject bad input before paying for that
        import keras

        from search.training import Diverged, fit_candidate

        # first, so a supervisor can tell whose trial this is if the process dies right away
        trial.set_user_attr(trial_record.WORKER, worker_id())
        try:
            raise_if_interrupted()  # never start a trial after a Ctrl-C, even a swallowed one
        except KeyboardInterrupt:
            trial.set_user_attr(trial_record.FAIL_REASON, interrupt_reason())
            raise
        try:
            params = sample_params(trial, self.spec.space)
        except Exception as exc:  # before the fit's try below: the trial's real reason, still
            trial.set_user_attr(trial_record.FAIL_REASON,
                                f"sampling the search space failed: {describe_failure(exc)}")
            raise
        seed = trial_seed(self.settings.seed, trial.number)
        set_user_attrs(trial, {trial_record.PARAMS: params.flat(),
                               trial_record.SETTINGS: self.trial_settings(seed)})
        callbacks: list[Any] = []
        if self.spec.search.pruner != "none":
            from optuna_integration import KerasPruningCallback

            callbacks.append(KerasPruningCallback(trial, "val_loss"))
        from search.callbacks import EpochRecorder

        saver = _CurveSaver(trial)
        recorder = EpochRecorder(saver.maybe_save)
        try:
            result = fit_candidate(
                params,
                self.data,
                task_kind(self.spec.task),
                self.spec.train,
                seed,
                callbacks=callbacks,
                recorder=recorder,
                verbose=2 if self.settings.verbose else 0,
            )
            self._keep(trial, result, saver, recorder.history)
            if len(self.spec.search.objectives) > 1:  # a multi-objective study: val_loss first
                return objective_values(self.spec.search.objective_names, result)
            return result.best_val_loss
        except optuna.TrialPruned:
            raise
        except Diverged as exc:
            trial.set_user_attr(trial_record.FAIL_REASON, str(exc))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(trial_record.FAIL_REASON, interrupt_reason())
            raise
        except Exception as exc:  # any other failure ends this trial only; the study goes on
            if hides_interrupt(exc):  # a Ctrl-C that a library's clean-up turned into its error
                trial.set_user_attr(trial_record.FAIL_REASON, interrupt_reason())
                raise KeyboardInterrupt from exc
            trial.set_user_attr(trial_record.FAIL_REASON, describe_failure(exc))
            raise
        finally:
            saver.save(recorder.history)  # the partial curves of a pruned or failed trial too
            keras.backend.clear_session()

    def trial_settings(self, seed: int) -> dict[str, Any]:
        """The `settings` attr of a trial with this seed (the KerasTuner engine shares it)."""
        return settings_attrs(self.spec, seed, self.settings.seed, self.backend)

    def _keep(self, trial: optuna.Trial, result: Any, saver: _CurveSaver,
              history: dict[str, list[float]]) -> None:
        model_path = None
        if is_best_so_far(trial.study, result.best_val_loss):
            # only candidates that beat the study's best are saved: the parent run logs the best
            self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
            path = self.settings.runs_dir / f"trial-{trial.number:05d}.keras"
            result.model.save(path)
            model_path = str(path.resolve())
        # one transaction for the result and the final curves, not ten
        set_user_attrs(trial, {**fit_attrs(result, model_path), trial_record.HISTORY: history})
        saver.saved(history)


class _CurveSaver:
    """Keeps a trial's curves in its user attrs while it trains, at most once per `INTERVAL` s.

    Writing the growing history after every epoch cost more than the epoch itself on small data
    sets (XOR, iris: a storage write against ~20 ms of training); the curves are saved once more
    when the trial ends (with its result, or alone if it failed), so nothing is lost, and a crash
    loses at most `INTERVAL` of them. The first save waits `INTERVAL` too: a trial shorter than
    that writes its curves once, with its result (a commit less a trial, issue 20).
    """

    INTERVAL = 2.0  # seconds

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.saved_at = time.monotonic()
        self.saved_epochs = -1
        self.failed = False  # the storage refused once: warned, and only the final save retries

    def maybe_save(self, epoch: int, history: dict[str, list[float]]) -> None:
        if not self.failed and time.monotonic() - self.saved_at >= self.INTERVAL:
            self.save(history)

    def save(self, history: dict[str, list[float]]) -> None:
        epochs = len(history.get("loss", []))
        if epochs == self.saved_epochs:
            return
        try:
            self.trial.set_user_attr(trial_record.HISTORY, history)
        except Exception as exc:  # called while a trial ends: never hide why it ended
            if not self.failed:  # one warning per trial, not one per epoch
                log.warning("trial %d: could not save its curves: %s", self.trial.number,
                            first_line(exc))
            self.failed = True
            return
        self.saved(history)

    def saved(self, history: dict[str, list[float]]) -> None:
        """`history` is in the storage now (written here, or with the trial's result)."""
        self.saved_at, self.saved_epochs = time.monotonic(), len(history.get("loss", []))


def worker_id() -> str:
    """host:pid of this process: which worker ran a trial."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def describe_failure(exc: BaseException) -> str:
    """One line saying why a trial failed; out-of-memory is named as such."""
    name = type(exc).__name__
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    if (
        isinstance(exc, MemoryError)
        or "ResourceExhausted" in name
        or "out of memory" in text.lower()
    ):
        return f"out of memory: {name}: {text}" if text else f"out of memory: {name}"
    return f"{name}: {text}" if text else name


def run_study(
    spec: ExperimentSpec,
    data: Dataset,
    settings: StudySettings,
    observers: list[StudyObserver],
    study: optuna.Study | None = None,
    gate: Callable[[], bool] | None = None,
) -> optuna.Study:
    """Add `settings.trials` trials to the study, telling every observer as they finish.

    With `gate`, it is asked before each trial instead (False ends the loop): the local
    supervisor's shared trial budget, so N workers add exactly `--trials` trials together.

    Re-raises KeyboardInterrupt after the interrupted trial is marked FAIL and every observer
    has closed what it opened; a second Ctrl-C while they close is held (see InterruptGuard).
    """
    study = study or open_study(spec, settings)

    def tell_observers(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        record = record_from_trial(trial)
        for observer in observers:
            observer.on_trial_end(study, record)
        raise_if_interrupted()  # one deferred or swallowed while the trial ended: ask no other

    with observed(study, spec, observers), trial_loop():
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
            tell_observers
        ]
        if gate is not None:
            # after tell_observers: observers get a trial before the next one is asked for
            callbacks.append(lambda study, _trial: None if gate() else study.stop())
        if gate is None or gate():
            try:
                study.optimize(
                    Objective(spec, data, settings),
                    n_trials=settings.trials if gate is None else None,
                    timeout=settings.timeout,
                    catch=(Exception,),
                    callbacks=callbacks,
                    gc_after_trial=False,  # clear_session() frees the graph; gc costs ~0.3 s
                )
            except Exception as exc:  # the objective's own errors are caught: Optuna's failed
                failure = storage_failure(settings, exc)
                if failure is None:
                    raise
                raise failure from None
    return study


@contextmanager
def trial_loop() -> Iterator[None]:
    """What a loop of trials holds only while it runs, for either engine: the frozen heap, and the
    study's arrays as tensors (`search.inputs`: ~150 MB for Fashion-MNIST), released when it ends
    so that a notebook or a program that goes on after a study does not keep them."""
    with frozen_heap():
        try:
            yield
        finally:
            release_tensors()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep what exists before the first trial out of the per-trial garbage collections.

    Keras' `clear_session()` ends every trial with a full `gc.collect()`, which walks every
    container object of the process: ~470,000 left by importing TensorFlow, plus those of every
    trial a resumed study has loaded (Optuna caches them), 0.35-0.7 s a trial on 2 cores and
    growing with the study (issue 20). Frozen (`gc.freeze`), they are skipped; the collection
    walks only what was made since, which still frees each trial's model and graph. They are
    unfrozen when the loop ends, so garbage among them is collected later as usual.
    """
    # the young generations only: a full collection here walks the same ~470,000 objects (~0.8 s
    # of every study's start); what old garbage gets frozen waits for the unfreeze
    gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def storage_failure(settings: StudySettings, exc: BaseException) -> TrackingError | None:
    """One line for an exception that escaped `study.optimize` because the storage failed
    mid-study (a read-only remount, a disk error, a lost database server); None for others.

    Optuna catches every exception of the objective; what escapes comes from its own writes
    (or hides one: when the trial's final state cannot be written it raises `AssertionError:
    Should not reach.` in their place), so the first error of the chain is the reason.
    """
    cause: BaseException = exc
    while isinstance(cause, AssertionError) and cause.__context__ is not None:
        cause = cause.__context__
    if not type(cause).__module__.startswith(STORAGE_MODULES + ("optuna",)):
        return None
    return TrackingError(
        f"the Optuna storage {mask_url(settings.storage)} failed mid-study: {first_line(cause)} "
        "(the running trial stays RUNNING there until it is writable again; the next run of "
        "the study fails it after the heartbeat's grace period, and `fitscope sync` then "
        "closes its runs)"
    )


@contextmanager
def observed(
    study: optuna.Study, spec: ExperimentSpec, observers: list[StudyObserver]
) -> Iterator[None]:
    """Start every observer, run the search in the body, then end every observer with how the
    search ended: "finished", "interrupted" (Ctrl-C) or "failed". Both engines run under it.

    A Ctrl-C in the body is re-raised after the observers have closed what they opened; a
    second Ctrl-C while they close is held (see InterruptGuard) and raised once they are done.
    """

    for observer in observers:
        observer.on_study_start(study, spec)
    outcome = "failed"
    guard = InterruptGuard()
    with guard:
        try:
            yield
            guard.raise_if_interrupted()  # one deferred until a checkpoint that never came
            outcome = "finished"
        except KeyboardInterrupt:
            outcome = "interrupted"
            raise
        finally:
            guard.hold()
            for observer in observers:
                observer.on_study_end(study, outcome)
    if guard.interrupted:  # Ctrl-C while the runs were being closed: stop as asked, now
        raise KeyboardInterrupt

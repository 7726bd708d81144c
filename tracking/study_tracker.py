"""MLflow tracking of a whole study: one parent run, one nested child run per trial.

Attached to the study loop as an observer. The parent records the resolved spec, the seed, the
git commit and the command that reproduces the study; at the end the best run, its val loss and
test metrics, and the best model. No run is left RUNNING: the parent ends FINISHED, KILLED
(Ctrl-C) or FAILED, and each child carries its trial's true state.

When MLflow is unreachable, trials go on (their records stay in the Optuna storage) and
`sync_study` (`fitscope sync`) later writes the missing child runs, replaces half-written ones and
closes a parent that could not be closed, with the status the study ended with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fitscope.errors import TrackingError
from fitscope.masking import mask_text, mask_url
from search.record import TrialRecord, record_from_trial
from tracking.background import BackgroundWriter
from tracking.trial_run import ROLE_TAG, STUDY_TAG, diagnose_record, log_trial_run

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec
    from search.study import StudySettings

log = logging.getLogger(__name__)
PARENT_ATTR = "mlflow_parent_run_id"
ENGINE_LABELS_ATTR = "engine_labels"  # set by search/kerastuner_engine.py on its record studies
DATA_ATTR = "data_sha256"
SPEC_ARTIFACT = "spec.json"
PARENT_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
# the parent's intended status, kept in Optuna: if MLflow is down when a study ends, `sync` can
# still close the parent truthfully ("RUNNING" while a process is at it)
PARENT_STATUS_ATTR = "mlflow_parent_status"
CLASS_NAMES_ATTR = "class_names"  # confusion-matrix labels, for a `sync` that loads no data
# A child run still RUNNING after this long was abandoned half-written (its writer died or lost
# MLflow mid-way): writing one takes about a second.
STALE_CHILD_S = 300
ROLES = ("study", "launcher", "worker", "standalone")
PARENT_SETTLE_S = 5.0  # standalone workers agree on one parent run (see _open_shared_parent)


class MlflowStudyTracker:
    """Observer that mirrors a study into MLflow."""

    def __init__(
        self,
        tracking_uri: str,
        spec: ExperimentSpec,
        settings: StudySettings,
        class_names: Sequence[str] | None = None,
        baseline_loss: float | None = None,
        log_best_model: bool = True,
        data_sha256: str | None = None,
        role: str = "study",
        background: bool = True,
    ) -> None:
        """`role` says which process this is, which decides who owns the parent run:

        - "study": the only process of the study; opens the parent, closes it at the end.
        - "launcher": the local supervisor of N workers; opens the parent, and at the end writes
          any run still missing (a dead worker's) and closes the parent.
        - "worker": a supervised worker; writes its own trials' runs, never touches the parent.
        - "standalone": one of many independent workers (`fitscope worker`, many machines);
          writes its own trials' runs, and the last one to finish, when no trial of the study
          is running or waiting, summarises and closes the parent.

        `background` writes each trial's child run on a writer thread while the next trial
        trains (the study's end waits for it); False writes it before the next trial starts.
        """
        from mlflow.tracking import MlflowClient

        from tracking.reachability import http_client_defaults

        http_client_defaults()  # a dead server must cost seconds per call, not minutes
        self.tracking_uri = tracking_uri
        self.spec = spec
        self.settings = settings
        self.class_names = class_names
        self.baseline_loss = baseline_loss
        self.log_best_model = log_best_model
        # hash of the preprocessed arrays (Dataset.sha256()); kept in the study's user attrs so
        # a later `sync`, which may not load the data, can still tag the runs with it
        self.data_sha256 = data_sha256
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id = ""
        self.parent_run_id = ""
        self.logged: dict[int, str] = {}  # trial number -> child run id
        self.partial: dict[int, list[tuple[str, int]]] = {}  # RUNNING children: (id, start ms)
        self.unsynced: list[int] = []
        self.warned_unreachable = False
        if role not in ROLES:
            raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        self.role = role
        self.writer = BackgroundWriter() if background else None

    # --- observer protocol -------------------------------------------------------------
    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        if self.data_sha256 and study.user_attrs.get(DATA_ATTR) != self.data_sha256:
            study.set_user_attr(DATA_ATTR, self.data_sha256)
        self.data_sha256 = self.data_sha256 or study.user_attrs.get(DATA_ATTR)
        with _tracking_errors(self.tracking_uri, "is not usable"):
            self.experiment_id = self._experiment_id(spec.name)
            if self.role == "worker":  # the launcher opened it; only find it
                self.parent_run_id = self._find_parent(study) or self._open_parent(study)
            elif self.role == "standalone":
                self.parent_run_id = self._open_shared_parent(study)
            else:
                self.parent_run_id = self._open_parent(study)
            self.logged = self._logged_trials()
        if self.baseline_loss is not None and "baseline_loss" not in study.user_attrs:
            study.set_user_attr("baseline_loss", self.baseline_loss)
        if self.class_names and CLASS_NAMES_ATTR not in study.user_attrs:
            study.set_user_attr(CLASS_NAMES_ATTR, list(self.class_names))
        if self.role != "worker":
            study.set_user_attr(PARENT_STATUS_ATTR, "RUNNING")

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        if record.number in self.logged:
            return
        if self.writer is None:
            self._write_trial(record)
        else:
            self.writer.submit(lambda: self._write_trial(record))

    def _write_trial(self, record: TrialRecord) -> None:
        try:
            self.logged[record.number] = self._log_trial(record)
        except Exception as exc:  # tracking must never stop the search: the record stays in Optuna
            self.unsynced.append(record.number)
            if not self.warned_unreachable:
                self.warned_unreachable = True
                log.warning(
                    "MLflow could not record trial %d (%s); trials keep running and stay in the "
                    "Optuna storage: run `fitscope sync %s --study %s` later",
                    record.number,
                    _first_line(exc),
                    self.spec.name,
                    self.settings.study_name,
                )

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        if self.writer is not None:
            self.writer.drain()  # every trial's run is written (or known unsynced) from here on
        if not self.parent_run_id:
            return
        if self.role in ("worker", "standalone"):
            self._end_as_worker(study, outcome)
            return
        try:
            # the launcher runs after its workers stopped: any run still missing is a dead
            # worker's (or one MLflow refused), and no live writer can be duplicated
            self.sync(study, only_worker=None if self.role == "launcher" else _this_worker())
            self._summarise(study)
        except Exception as exc:  # report, then still close the parent below
            log.warning(
                "MLflow summary of study %s incomplete: %s", study.study_name, _first_line(exc)
            )
        finally:
            status = PARENT_STATUS.get(outcome, "FAILED")
            try:
                study.set_user_attr(PARENT_STATUS_ATTR, status)
            except Exception as exc:  # the Optuna storage is gone too; still try MLflow
                log.warning("could not record the study's outcome: %s", _first_line(exc))
            try:
                self.client.set_terminated(self.parent_run_id, status)
            except Exception as exc:
                log.warning(
                    "could not close MLflow run %s (%s): run `fitscope sync %s --study %s` when "
                    "MLflow is back",
                    self.parent_run_id,
                    _first_line(exc),
                    self.spec.name,
                    study.study_name,
                )

    def _end_as_worker(self, study: optuna.Study, outcome: str) -> None:
        """A worker writes its own trials' missing runs; the parent is the launcher's, or, for
        standalone workers, the last one's to finish (a later worker reopens it)."""
        from optuna.trial import TrialState

        try:
            self.sync(study, only_worker=_this_worker())
            busy = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
            if self.role != "standalone" or outcome != "finished" or busy:
                return
            self._summarise(study)
            study.set_user_attr(PARENT_STATUS_ATTR, "FINISHED")
            self.client.set_terminated(self.parent_run_id, "FINISHED")
        except Exception as exc:  # the runs stay in Optuna: `fitscope sync` writes them later
            log.warning(
                "MLflow could not take this worker's last runs of study %s (%s): run "
                "`fitscope sync %s --study %s` later",
                study.study_name,
                _first_line(exc),
                self.spec.name,
                study.study_name,
            )

    def _open_shared_parent(self, study: optuna.Study) -> str:
        """The parent run of a study that independent workers start at the same moment.

        MLflow cannot create a run only if none exists, so each worker that finds no parent
        creates one and records it in the study; the study attribute is last-writer-wins, so
        after PARENT_SETTLE_S (far more than one create call) every such worker reads it again,
        adopts the run it names and deletes its own if that lost.
        """
        existing = self._find_parent(study)
        if existing:
            return self._open_parent(study)
        mine = self._create_parent(study)
        time.sleep(PARENT_SETTLE_S)
        winner = str(study.user_attrs.get(PARENT_ATTR) or mine)
        if winner != mine:
            self.client.delete_run(mine)
        return winner

    def sync_study(self, study: optuna.Study) -> tuple[list[int], str | None]:
        """`fitscope sync`: bring MLflow up to date with the Optuna storage.

        Writes a child run for every finished trial that has none (or only a half-written one),
        refreshes the parent's summary, and closes the parent if it was left RUNNING while no
        trial is running, with the status the study ended with. Unlike `on_study_start` it never
        reopens the parent. Returns the trial numbers written and the status the parent was
        closed with (None: it was not RUNNING, or a worker is still at it).

        Raises:
            TrackingError: MLflow cannot be reached or refuses a write (what was written stays).
        """
        with _tracking_errors(self.tracking_uri, "refused the sync",
                              "run `fitscope sync` again; what was written stays"):
            self.experiment_id = self._experiment_id(self.spec.name)
            self.parent_run_id = self._find_parent(study) or self._create_parent(study)
            before = self.client.get_run(self.parent_run_id).info.status
            written = self.sync(study)
            self._summarise(study)  # logging the best model ends the parent FINISHED (restored)
            closed = self._parent_status_after_sync(study, before)
            if closed or before != "RUNNING":
                self.client.set_terminated(self.parent_run_id, closed or before)
        return written, closed

    def _parent_status_after_sync(self, study: optuna.Study, before: str) -> str | None:
        from optuna.trial import TrialState

        if before != "RUNNING" or study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return None  # closed already, or a worker is still running trials
        status = study.user_attrs.get(PARENT_STATUS_ATTR)
        # "RUNNING" or nothing recorded: the process ended without closing (killed, crashed)
        return status if status in ("FINISHED", "KILLED", "FAILED") else "FAILED"

    # --- pieces ------------------------------------------------------------------------
    def sync(self, study: optuna.Study, only_worker: str | None = None) -> list[int]:
        """Write child runs for finished trials that have none yet; return their numbers.

        A half-written child (left RUNNING by a writer that lost MLflow mid-way) is deleted and
        written again: by this worker for its own trials, by `fitscope sync` (`only_worker`
        None) once it is STALE_CHILD_S old or no trial is running. A sync that runs while a
        worker is writing that very trial's child could still duplicate it, so run it after the
        workers have stopped.
        """
        from optuna.trial import TrialState

        self.logged.update(self._logged_trials())  # a write that failed late may have landed
        written = []
        finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        trials = study.get_trials(deepcopy=False)
        idle = not any(t.state == TrialState.RUNNING for t in trials)
        now_ms = time.time() * 1000
        for trial in trials:
            if trial.state not in finished or trial.number in self.logged:
                continue
            record = record_from_trial(trial)
            if only_worker is not None and record.worker != only_worker:
                continue
            partial = self.partial.get(trial.number, [])
            if (
                only_worker is None
                and not idle
                and any(now_ms - started < STALE_CHILD_S * 1000 for _, started in partial)
            ):
                continue  # maybe a live worker writing it right now
            for run_id, _ in partial:
                self.client.delete_run(run_id)
            self.partial.pop(trial.number, None)
            self.logged[trial.number] = self._log_trial(record)
            written.append(trial.number)
        return written

    def _log_trial(self, record: TrialRecord) -> str:
        from experiments.tasks import task_kind

        diagnosis = diagnose_record(record, self.baseline_loss, dict(self.spec.diagnosis))
        return log_trial_run(
            self.client,
            self.experiment_id,
            self.parent_run_id,
            self.settings.study_name,
            record,
            task_kind(self.spec.task).curve_metric,
            self.class_names,
            diagnosis,
            tags=self._fingerprint(),
        )

    def _fingerprint(self) -> dict[str, str]:
        """Environment tags of this process (computed once) with the command and data hash."""
        from tracking.fingerprint import run_tags

        return run_tags(self.settings.command, self.data_sha256)

    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return str(self.client.create_experiment(name))
            except Exception:  # a worker started at the same moment created it first
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {name!r} is deleted; restore it (`mlflow experiments restore`)"
                " or point --tracking-uri elsewhere"
            )
        return str(experiment.experiment_id)

    def _open_parent(self, study: optuna.Study) -> str:
        """Reopen the study's parent run when resuming, else create it."""
        existing = self._find_parent(study)
        if existing:
            self.client.update_run(existing, status="RUNNING")
            self.client.set_tag(existing, "fitscope.last_command", self.settings.command[:5000])
            return existing
        return self._create_parent(study)

    def _create_parent(self, study: optuna.Study) -> str:
        from tracking.fingerprint import study_tags

        tags = {
            ROLE_TAG: "study",
            STUDY_TAG: study.study_name,
            "fitscope.experiment": self.spec.name,
            "fitscope.storage": mask_url(self.settings.storage),
            **study_tags(self.settings.command, self.data_sha256),
        }
        # how the study searched (engine=kerastuner, tuner=hyperband): tags and params; a study
        # without the attr is the Optuna engine's
        labels = {"engine": "optuna", **study.user_attrs.get(ENGINE_LABELS_ATTR, {})}
        tags.update(labels)
        run = self.client.create_run(self.experiment_id, run_name=study.study_name, tags=tags)
        run_id = run.info.run_id
        self._log_parent_params(run_id, labels)
        # the resolved spec, whole and typed: `fitscope rerun` rebuilds the experiment from it
        self.client.log_dict(run_id, self.spec.model_dump(mode="json"), SPEC_ARTIFACT)
        study.set_user_attr(PARENT_ATTR, run_id)
        return str(run_id)

    def _find_parent(self, study: optuna.Study) -> str | None:
        run_id = study.user_attrs.get(PARENT_ATTR)
        if run_id:
            try:
                run = self.client.get_run(run_id)
                if (
                    run.info.experiment_id == self.experiment_id
                    and run.info.lifecycle_stage == "active"
                ):
                    return str(run_id)
            except Exception:  # the id belongs to another tracking store: start a new parent
                log.info("parent run %s not in this tracking store; creating a new one", run_id)
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{STUDY_TAG}` = '{study.study_name}' and tags.`{ROLE_TAG}` = 'study'"
            ),
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    def _log_parent_params(self, run_id: str, labels: dict[str, str] | None = None) -> None:
        from mlflow.entities import Param

        params = {f"spec.{k}": v for k, v in _flatten(self.spec.model_dump(mode="json")).items()}
        params.update(
            seed=self.settings.seed,
            sampler=self.spec.search.sampler,
            pruner=self.spec.search.pruner,
            study_name=self.settings.study_name,
        )
        params.update(labels or {})  # another engine's own sampler/pruner replace the spec's
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def _logged_trials(self) -> dict[int, str]:
        """Trial number -> child run id of the finished children; RUNNING ones (half-written,
        or being written by another worker) go to `self.partial` instead."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{STUDY_TAG}` = '{self.settings.study_name}' and tags.`{ROLE_TAG}` = 'trial'"
            ),
            max_results=50000,
        )
        logged: dict[int, str] = {}
        self.partial = {}
        for run in runs:
            number = int(run.data.tags["trial_number"])
            if run.info.status == "RUNNING":
                self.partial.setdefault(number, []).append((run.info.run_id, run.info.start_time))
            else:
                logged[number] = run.info.run_id
        return logged

    def _summarise(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        counts = {
            state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
            for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        for name, count in counts.items():
            self.client.log_metric(self.parent_run_id, f"trials_{name}", count)
        if not complete:
            return
        best = record_from_trial(study.best_trial)
        best_run = self.logged.get(best.number)
        if best_run:
            self.client.set_tag(self.parent_run_id, "best_run_id", best_run)
        self.client.set_tag(self.parent_run_id, "best_trial_number", str(best.number))
        self.client.log_metric(self.parent_run_id, "best_val_loss", float(study.best_value))
        for name, value in best.test.items():
            self.client.log_metric(self.parent_run_id, f"best_{name}", float(value))
        if self.log_best_model:
            self._log_model(best)

    def _log_model(self, best: TrialRecord) -> None:
        """Log the best trial's Keras model on the parent (once per best trial)."""
        from pathlib import Path

        tags = self.client.get_run(self.parent_run_id).data.tags
        if tags.get("best_model_trial") == str(best.number):
            return
        if not best.model_path or not Path(best.model_path).is_file():
            log.warning(
                "best trial %d's model file is not on this machine; not logged", best.number
            )
            return
        import keras
        import mlflow

        from tracking.fingerprint import package_versions

        model = keras.saving.load_model(best.model_path)
        versions = package_versions()
        # explicit requirements: MLflow's inference imports the model in a subprocess (~10 s)
        requirements = [
            f"{name}=={versions[name]}"
            for name in ("keras", "tensorflow", "numpy")
            if name in versions
        ]
        mlflow.set_tracking_uri(self.tracking_uri)
        with mlflow.start_run(run_id=self.parent_run_id):
            mlflow.keras.log_model(
                model,
                name="best_model",
                pip_requirements=requirements,
                signature=_model_signature_for(model),
            )
        self.client.set_tag(self.parent_run_id, "best_model_trial", str(best.number))
        keras.backend.clear_session()


def _model_signature_for(model: Any) -> Any:
    """Input/output schema from the model's own shapes (no data needed)."""
    import numpy as np
    from mlflow.models import infer_signature

    example = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    return infer_signature(example, np.asarray(model.predict(example, verbose=0)))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not {"low", "high"} <= set(value):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _this_worker() -> str:
    from search.study import worker_id

    return worker_id()


@contextmanager
def _tracking_errors(tracking_uri: str, failed: str, advice: str = "") -> Iterator[None]:
    """Whatever MLflow raises (MlflowException, requests errors, OSError...) becomes one
    TrackingError line naming the store, its password masked."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        suffix = f" ({advice})" if advice else ""
        raise TrackingError(
            f"MLflow tracking store {mask_url(tracking_uri)} {failed}: {_first_line(exc)}{suffix}"
        ) from None


def _first_line(exc: BaseException) -> str:
    # MLflow's errors quote the request URL, credentials included
    lines = mask_text(str(exc)).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__

"""MLflow tracking of a whole study: one parent run, one nested child run per trial.

Attached to the study loop as an observer. The parent records the resolved spec, the seed, the
git commit and the command that reproduces the study; at the end the best run, its val loss and
test metrics, and the best model. No run is left RUNNING: the parent ends FINISHED, KILLED
(Ctrl-C) or FAILED, and each child carries its trial's true state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fitscope.errors import TrackingError
from fitscope.masking import mask_url
from search.record import TrialRecord, record_from_trial
from tracking.trial_run import ROLE_TAG, STUDY_TAG, diagnose_record, log_trial_run

if TYPE_CHECKING:
    import optuna

    from experiments.spec import ExperimentSpec
    from search.study import StudySettings

log = logging.getLogger(__name__)
PARENT_ATTR = "mlflow_parent_run_id"
PARENT_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}


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
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.spec = spec
        self.settings = settings
        self.class_names = class_names
        self.baseline_loss = baseline_loss
        self.log_best_model = log_best_model
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id = ""
        self.parent_run_id = ""
        self.logged: dict[int, str] = {}  # trial number -> child run id
        self.unsynced: list[int] = []
        self.warned_unreachable = False

    # --- observer protocol -------------------------------------------------------------
    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        try:
            self.experiment_id = self._experiment_id(spec.name)
            self.parent_run_id = self._open_parent(study)
            self.logged = self._logged_trials()
        except TrackingError:
            raise
        except Exception as exc:  # MLflow raises MlflowException, requests errors, OSError...
            raise TrackingError(
                f"MLflow tracking store {mask_url(self.tracking_uri)} is not usable: "
                f"{_first_line(exc)}"
            ) from None
        if self.baseline_loss is not None and "baseline_loss" not in study.user_attrs:
            study.set_user_attr("baseline_loss", self.baseline_loss)

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        if record.number in self.logged:
            return
        try:
            self.logged[record.number] = self._log_trial(record)
        except Exception as exc:  # tracking must never stop the search: the record stays in Optuna
            self.unsynced.append(record.number)
            if not self.warned_unreachable:
                self.warned_unreachable = True
                log.warning(
                    "MLflow could not record trial %d (%s); trials keep running and stay in the "
                    "Optuna storage: run `fitscope sync %s --study %s` later",
                    record.number, _first_line(exc), self.spec.name, study.study_name,
                )

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        if not self.parent_run_id:
            return
        try:
            self.sync(study, only_worker=_this_worker())
            self._summarise(study)
        except Exception as exc:  # report, then still close the parent below
            log.warning("MLflow summary of study %s incomplete: %s", study.study_name,
                        _first_line(exc))
        finally:
            try:
                self.client.set_terminated(self.parent_run_id, PARENT_STATUS.get(outcome, "FAILED"))
            except Exception as exc:
                log.warning("could not close MLflow run %s: %s", self.parent_run_id,
                            _first_line(exc))

    # --- pieces ------------------------------------------------------------------------
    def sync(self, study: optuna.Study, only_worker: str | None = None) -> list[int]:
        """Write child runs for finished trials that have none yet; return their numbers."""
        from optuna.trial import TrialState

        written = []
        finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        for trial in study.get_trials(deepcopy=False, states=finished):
            if trial.number in self.logged:
                continue
            record = record_from_trial(trial)
            if only_worker is not None and record.worker != only_worker:
                continue
            self.logged[trial.number] = self._log_trial(record)
            written.append(trial.number)
        return written

    def _log_trial(self, record: TrialRecord) -> str:
        from experiments.tasks import task_kind

        diagnosis = diagnose_record(record, self.baseline_loss, dict(self.spec.diagnosis))
        return log_trial_run(
            self.client, self.experiment_id, self.parent_run_id, self.settings.study_name,
            record, task_kind(self.spec.task).curve_metric, self.class_names, diagnosis,
        )

    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            return str(self.client.create_experiment(name))
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
        from tracking.fingerprint import study_tags

        tags = {
            ROLE_TAG: "study",
            STUDY_TAG: study.study_name,
            "fitscope.experiment": self.spec.name,
            "fitscope.storage": mask_url(self.settings.storage),
            **study_tags(self.settings.command),
        }
        run = self.client.create_run(self.experiment_id, run_name=study.study_name, tags=tags)
        run_id = run.info.run_id
        self._log_parent_params(run_id)
        study.set_user_attr(PARENT_ATTR, run_id)
        return str(run_id)

    def _find_parent(self, study: optuna.Study) -> str | None:
        run_id = study.user_attrs.get(PARENT_ATTR)
        if run_id:
            try:
                run = self.client.get_run(run_id)
                if run.info.experiment_id == self.experiment_id and run.info.lifecycle_stage == "active":
                    return str(run_id)
            except Exception:  # the id belongs to another tracking store: start a new parent
                log.info("parent run %s not in this tracking store; creating a new one", run_id)
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{STUDY_TAG}` = '{study.study_name}' and tags.`{ROLE_TAG}` = 'study'",
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    def _log_parent_params(self, run_id: str) -> None:
        from mlflow.entities import Param

        params = {f"spec.{k}": v for k, v in _flatten(self.spec.model_dump(mode="json")).items()}
        params.update(
            seed=self.settings.seed,
            sampler=self.spec.search.sampler,
            pruner=self.spec.search.pruner,
            study_name=self.settings.study_name,
        )
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def _logged_trials(self) -> dict[int, str]:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{STUDY_TAG}` = '{self.settings.study_name}' and tags.`{ROLE_TAG}` = 'trial'"
            ),
            max_results=50000,
        )
        return {int(r.data.tags["trial_number"]): r.info.run_id for r in runs}

    def _summarise(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
                  for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
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
            log.warning("best trial %d's model file is not on this machine; not logged", best.number)
            return
        import keras
        import mlflow

        from tracking.fingerprint import package_versions

        model = keras.saving.load_model(best.model_path)
        versions = package_versions()
        # explicit requirements: MLflow's inference imports the model in a subprocess (~10 s)
        requirements = [f"{name}=={versions[name]}" for name in ("keras", "tensorflow", "numpy")
                        if name in versions]
        mlflow.set_tracking_uri(self.tracking_uri)
        with mlflow.start_run(run_id=self.parent_run_id):
            mlflow.keras.log_model(model, name="best_model", pip_requirements=requirements,
                                   signature=_model_signature_for(model))
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__

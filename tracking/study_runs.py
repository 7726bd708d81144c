"""The MLflow runs of one study: its experiment, one parent run, one nested child run per trial.

The parent records the resolved spec, the seed, the git commit and the command that reproduces
the study; at the end the best run, its val loss and test metrics, and the best model. Who opens
and closes the parent is not decided here but by the process's role (tracking/parent_policy.py);
the live observer (tracking/live.py) and the offline sync (tracking/sync.py) both work through
this object, so a run looks the same however it was written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from analysis.diagnosis import diagnose_record
from common.errors import TrackingError
from common.masking import mask_url
from common.text import first_line
from experiments.tasks import task_kind
from reporting import plots
from search import record as trial_record
from search.objectives import best_trial, is_multi_objective, pareto_numbers, study_objectives
from search.record import TrialRecord, record_from_trial
from tracking.best_model import Winner, log_best_model
from tracking.fingerprint import run_tags, study_tags
from tracking.reachability import http_client_defaults
from tracking.trial_run import ROLE_TAG, STUDY_TAG, log_trial_run

if TYPE_CHECKING:
    import optuna

    from experiments.data.raw_inputs import RawInputs
    from experiments.spec import ExperimentSpec
    from search.study import StudySettings

log = logging.getLogger(__name__)
SPEC_ARTIFACT = "spec.json"  # the resolved spec on the parent: `fitscope rerun` rebuilds from it
# MLflow 3's UI opens a "model training" experiment on its training runs, not on the GenAI
# overview (traces, tokens) it shows an experiment of unknown kind
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# A child run still RUNNING after this long was abandoned half-written (its writer died or lost
# MLflow mid-way): writing one takes about a second.
STALE_CHILD_S = 300
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
PARETO_TAG = "pareto"  # "true" on the runs of a multi-objective study's front, else "false"
PARETO_ARTIFACT = "pareto_front.json"  # on the parent: the front's trials, runs and values


class StudyRuns:
    """One study's runs in one MLflow tracking store.

    Args:
        tracking_uri: The MLflow store.
        spec: The study's experiment (its name is the MLflow experiment).
        settings: The study's name, seed, storage and the command that runs it.
        class_names: Confusion-matrix labels (None for regression).
        baseline_loss: The trivial predictor's loss, for the fit diagnosis.
        data_sha256: Hash of the preprocessed arrays, tagged on every run.
        log_best_model: Log the best trial's model on the parent when summarising, and
            register it.
        raw_inputs: Gives the experiment's fitted raw-input preprocessing, which the logged
            model carries (called only when a best model is logged).
    """

    def __init__(
        self,
        tracking_uri: str,
        spec: ExperimentSpec,
        settings: StudySettings,
        class_names: Sequence[str] | None = None,
        baseline_loss: float | None = None,
        data_sha256: str | None = None,
        log_best_model: bool = True,
        raw_inputs: Callable[[], RawInputs] | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient

        http_client_defaults()  # a dead server must cost seconds per call, not minutes
        self.tracking_uri = tracking_uri
        self.spec = spec
        self.settings = settings
        self.class_names = class_names
        self.baseline_loss = baseline_loss
        self.data_sha256 = data_sha256
        self.log_best_model = log_best_model
        self.raw_inputs = raw_inputs
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id = ""
        self.parent_run_id = ""
        self.logged: dict[int, str] = {}  # trial number -> child run id
        self.partial: dict[int, list[tuple[str, int]]] = {}  # RUNNING children: (id, start ms)
        self.pareto_tags: dict[int, str | None] = {}  # trial number -> its run's pareto tag
        self.figures: Any = plots  # a live study draws in a process of its own (MlflowObserver)

    # --- the study's own record in Optuna ---------------------------------------------
    def remember_in_study(self, study: optuna.Study) -> None:
        """Keep what a later `sync` (which may load no data) needs in the study's attrs."""
        attrs = study.user_attrs
        if self.data_sha256 and attrs.get(trial_record.DATA_SHA256) != self.data_sha256:
            study.set_user_attr(trial_record.DATA_SHA256, self.data_sha256)
        self.data_sha256 = self.data_sha256 or attrs.get(trial_record.DATA_SHA256)
        if self.baseline_loss is not None and trial_record.BASELINE_LOSS not in attrs:
            study.set_user_attr(trial_record.BASELINE_LOSS, self.baseline_loss)
        if self.class_names and trial_record.CLASS_NAMES not in attrs:
            study.set_user_attr(trial_record.CLASS_NAMES, list(self.class_names))

    # --- experiment and parent run -----------------------------------------------------
    def connect(self) -> None:
        """Find or create the MLflow experiment (refusing a deleted one)."""
        name = self.spec.name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                self.experiment_id = str(
                    self.client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
                )
                return
            except Exception:  # a worker started at the same moment created it first
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {name!r} is deleted; restore it (`mlflow experiments restore`)"
                " or point --tracking-uri elsewhere"
            )
        self.experiment_id = str(experiment.experiment_id)
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # created before fitscope set it
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)

    def find_parent(self, study: optuna.Study) -> str | None:
        """The study's parent run in this store: the one the study names, else by tags."""
        run_id = study.user_attrs.get(trial_record.MLFLOW_PARENT)
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
                f"tags.`{STUDY_TAG}` = {filter_literal(study.study_name)} "
                f"and tags.`{ROLE_TAG}` = 'study'"
            ),
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    def reopen_parent(self, study: optuna.Study) -> str:
        """Reopen the study's parent run when resuming, else create it."""
        existing = self.find_parent(study)
        if existing:
            self.client.update_run(existing, status="RUNNING")
            self.client.set_tag(existing, "fitscope.last_command", self.settings.command[:5000])
            return existing
        return self.create_parent(study)

    def create_parent(self, study: optuna.Study) -> str:
        """A new parent run with the spec, seed, engine and reproduction tags; the study
        remembers its id."""

        tags = {
            ROLE_TAG: "study",
            STUDY_TAG: study.study_name,
            "fitscope.experiment": self.spec.name,
            "fitscope.storage": mask_url(self.settings.storage),
            **study_tags(self.settings.command, self.data_sha256),
        }
        # how the study searched (engine=kerastuner, tuner=hyperband): tags and params; a study
        # without the attr is the Optuna engine's
        labels = {"engine": "optuna", **study.user_attrs.get(trial_record.ENGINE_LABELS, {})}
        tags.update(labels)
        run = self.client.create_run(self.experiment_id, run_name=study.study_name, tags=tags)
        run_id = str(run.info.run_id)
        self._log_parent_params(run_id, labels)
        # the resolved spec, whole and typed: `fitscope rerun` rebuilds the experiment from it
        self.client.log_dict(run_id, self.spec.model_dump(mode="json"), SPEC_ARTIFACT)
        study.set_user_attr(trial_record.MLFLOW_PARENT, run_id)
        return run_id

    def close_parent(self, status: str) -> None:
        self.client.set_terminated(self.parent_run_id, status)

    def parent_status(self) -> str:
        return str(self.client.get_run(self.parent_run_id).info.status)

    # --- child runs ----------------------------------------------------------------------
    def load_logged(self) -> None:
        """Read which trials already have a finished child run; RUNNING ones (half-written, or
        being written by another worker) go to `partial` instead."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{STUDY_TAG}` = {filter_literal(self.settings.study_name)} "
                f"and tags.`{ROLE_TAG}` = 'trial'"
            ),
            max_results=50000,
        )
        self.partial = {}
        for run in runs:
            number = int(run.data.tags["trial_number"])
            if run.info.status == "RUNNING":
                self.partial.setdefault(number, []).append((run.info.run_id, run.info.start_time))
            else:
                self.logged[number] = run.info.run_id
                self.pareto_tags[number] = run.data.tags.get(PARETO_TAG)

    def write_trial(self, record: TrialRecord) -> str:
        """Write one trial's child run under the parent; return its id."""
        diagnosis = diagnose_record(record, self.baseline_loss, self.spec.diagnosis)

        run_id = log_trial_run(
            self.client,
            self.experiment_id,
            self.parent_run_id,
            self.settings.study_name,
            record,
            task_kind(self.spec.task).curve_metric,
            self.class_names,
            diagnosis,
            tags=run_tags(self.settings.command, self.data_sha256),
            figures=self.figures,
        )
        self.logged[record.number] = run_id
        return run_id

    def write_missing(self, study: optuna.Study, only_worker: str | None = None) -> list[int]:
        """Write child runs for finished trials that have none yet; return their numbers.

        A half-written child (left RUNNING by a writer that lost MLflow mid-way) is deleted and
        written again: by a worker for its own trials (`only_worker`), by the launcher or
        `fitscope sync` (`only_worker` None) once it is STALE_CHILD_S old or no trial is
        running. A sync that runs while a worker is writing that very trial's child could still
        duplicate it, so run it after the workers have stopped.
        """
        self.load_logged()  # a write that failed late may have landed
        written = []
        trials = study.get_trials(deepcopy=False)
        idle = not any(t.state.name == "RUNNING" for t in trials)
        now_ms = time.time() * 1000
        for trial in trials:
            if trial.state.name not in FINISHED or trial.number in self.logged:
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
            self.write_trial(record)
            written.append(trial.number)
        return written

    # --- the study's summary -------------------------------------------------------------
    def summarise(self, study: optuna.Study) -> None:
        """Trial counts, the best run, its val loss and test metrics, and the best model."""
        from optuna.trial import TrialState

        counts = {
            state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
            for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        for name, count in counts.items():
            self.client.log_metric(self.parent_run_id, f"trials_{name}", count)
        if not counts["complete"]:
            return
        best_frozen = best_trial(study)  # on a multi-objective study: the front's lowest val_loss
        assert best_frozen is not None  # a complete trial exists
        best, best_val = record_from_trial(best_frozen), float(best_frozen.values[0])
        best_run = self.logged.get(best.number)
        if best_run:
            self.client.set_tag(self.parent_run_id, "best_run_id", best_run)
        self.client.set_tag(self.parent_run_id, "best_trial_number", str(best.number))
        self.client.log_metric(self.parent_run_id, "best_val_loss", best_val)
        for name, value in best.test.items():
            self.client.log_metric(self.parent_run_id, f"best_{name}", float(value))
        if is_multi_objective(study):
            self.mark_pareto_front(study)
        if self.log_best_model and self.raw_inputs is not None:
            winner = Winner(self.spec.name, self.settings.study_name, self.parent_run_id,
                            best_run, best, best_val, self.data_sha256)
            log_best_model(self.client, self.tracking_uri, winner, self.raw_inputs)

    def mark_pareto_front(self, study: optuna.Study) -> list[int]:
        """Tag every complete trial's run `pareto=true` or `pareto=false` as the front is now,
        and list the front on the parent (tag `pareto_front`, artifact `pareto_front.json`).

        The front changes as trials finish, so this runs whenever the study is summarised (its
        end, `fitscope sync`): a trial pushed off the front since is retagged false. Returns the
        front's trial numbers.
        """
        from optuna.trial import TrialState

        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = {t.number: t.values for t in complete}
        front = sorted(pareto_numbers(study), key=lambda n: (values[n][0], n))
        for trial in complete:
            run_id = self.logged.get(trial.number)
            wanted = "true" if trial.number in front else "false"
            if run_id and self.pareto_tags.get(trial.number) != wanted:
                self.client.set_tag(run_id, PARETO_TAG, wanted)
                self.pareto_tags[trial.number] = wanted
        names = study_objectives(study)
        listed = ",".join(map(str, front))  # lowest val_loss first
        self.client.set_tag(self.parent_run_id, "pareto_front",
                            listed if len(listed) <= 5000 else listed[:4990] + ",...")
        self.client.set_tag(self.parent_run_id, "objectives", ",".join(names))
        self.client.log_metric(self.parent_run_id, "pareto_size", len(front))
        self.client.log_dict(self.parent_run_id, {
            "objectives": dict(zip(names, [d.name.lower() for d in study.directions],
                                   strict=True)),
            "front": [{"trial": n, "run_id": self.logged.get(n),
                       **dict(zip(names, values[n], strict=True))} for n in front],
        }, PARETO_ARTIFACT)
        return front

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


@contextmanager
def tracking_errors(tracking_uri: str, failed: str, advice: str = "") -> Iterator[None]:
    """Whatever MLflow raises (MlflowException, requests errors, OSError...) becomes one
    TrackingError line naming the store, its password masked."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        suffix = f" ({advice})" if advice else ""
        raise TrackingError(
            f"MLflow tracking store {mask_url(tracking_uri)} {failed}: {first_line(exc)}{suffix}"
        ) from None


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not {"low", "high"} <= set(value):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def filter_literal(value: str) -> str:
    """`value` quoted for an MLflow filter string. MLflow's parser has no escape inside quotes,
    so the quote kind the value lacks is used, and a value it cannot express is refused.

    Example:
        >>> print(filter_literal("iris-s42"), filter_literal("it's"))
        'iris-s42' "it's"
    """
    for quote in ("'", '"'):
        if quote not in value and "\\" not in value:
            return f"{quote}{value}{quote}"
    raise TrackingError(f"cannot look up the name {value[:80]!r} in MLflow: it holds both "
                        "kinds of quote or a backslash")

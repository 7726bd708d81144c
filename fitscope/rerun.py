"""`fitscope rerun`: rebuild one trial from its MLflow run, retrain it, log and compare the rerun.

What a trial run holds is enough to train it again: its params (the hyperparameters and the
settings `seed`, `max_epochs`, `patience`, `deterministic`, `steps_per_execution`), its study's
parent run (the resolved spec as artifact `spec.json`, or flattened as `spec.*` params) and the
tag `data_sha256` of the preprocessed arrays it trained on. Everything missing is a RerunError
that names it.

Example:
    >>> from mlflow.tracking import MlflowClient  # doctest: +SKIP
    >>> plan = plan_rerun(MlflowClient("sqlite:///mlflow.db"), "3f2a...")  # doctest: +SKIP
    >>> plan.params.short(), plan.seed  # doctest: +SKIP
    ('[32-16] relu adam lr=0.0031 bs=16 do=0.05', 1608637542)
"""

from __future__ import annotations

import ast
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.diagnosis import baseline_loss, diagnose_record
from analysis.rerun_compare import Outcome
from common.errors import BackendError, DataError, FitscopeError, RerunError
from common.text import first_line
from experiments.data import load_dataset
from experiments.registry import parse_spec
from experiments.spec import ExperimentSpec, TrainSpec
from experiments.tasks import task_kind
from fitscope.settings import check_backend
from search.inputs import ARRAYS
from search.params import TrialParams
from search.record import TrialRecord, record_from_fit
from search.seeding import backend_versions
from tracking.fingerprint import run_tags
from tracking.study_runs import SPEC_ARTIFACT
from tracking.trial_run import ROLE_TAG, STUDY_TAG, log_trial_run

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from experiments.data import Dataset

SETTINGS = ("seed", "max_epochs", "patience", "deterministic", "steps_per_execution")
OPTIONAL_SETTINGS = ("input_pipeline", "study_seed", "split_seed",  # absent from older runs
                     "keras_backend")
HYPERPARAMS = ("n_layers", "activation", "optimizer", "learning_rate", "batch_size", "dropout")
DATA_TAG = "data_sha256"


@dataclass(frozen=True)
class RerunPlan:
    """Everything needed to train one trial again, read from MLflow."""

    run_id: str
    experiment_id: str
    parent_run_id: str
    study_name: str
    trial_number: int
    spec: ExperimentSpec  # train: the trial's own settings, max_epochs = the epochs to replay
    params: TrialParams
    seed: int
    settings: dict[str, Any]  # the run's settings params, as logged
    data_sha256: str | None  # the tag of the original run (or its parent); None: not recorded
    tags: dict[str, str]  # the original run's tags (its fingerprint)
    original: Outcome
    notes: tuple[str, ...] = ()  # what the user should know before it trains (a deleted run)


def plan_rerun(client: MlflowClient, run_id: str) -> RerunPlan:
    """Read a trial run and its study's parent run into a RerunPlan.

    Raises:
        RerunError: unknown run id, not a fitscope trial run, a param or the spec missing.
    """
    run = _get_run(client, run_id)
    tags = dict(run.data.tags)
    _require_trial(run_id, tags)
    params = dict(run.data.params)
    if "kt_continues" in params:
        # KerasTuner's Hyperband started it from another trial's saved weights, not from a seed
        raise RerunError(f"run {run_id} continued the weights of KerasTuner trial "
                         f"{params['kt_continues']}: it cannot be retrained on its own")
    trial_params = _trial_params(run_id, params)
    parent_id = tags.get("mlflow.parentRunId")
    if not parent_id:
        raise RerunError(f"run {run_id} has no parent (study) run: cannot rebuild its experiment")
    parent = _get_run(client, parent_id, what="its study's parent run")
    spec = _spec_of(client, parent)
    original = _outcome_of_run(client, run, spec)
    settings = {k: params[k] for k in (*SETTINGS, *OPTIONAL_SETTINGS) if k in params}
    epochs = int(settings["max_epochs"])
    if original.state == "PRUNED":
        # The pruner stopped it after k epochs; early stopping had not fired by then, so the
        # same k epochs are what a faithful replay must reproduce (and all it can compare).
        epochs = len(original.curves.get("val_loss", [])) or epochs
    try:
        train = TrainSpec(
            max_epochs=epochs,
            patience=int(settings["patience"]),
            deterministic=_as_bool(settings["deterministic"]),
            steps_per_execution=int(settings["steps_per_execution"]),
            # runs recorded before the setting existed fed Keras the arrays
            input_pipeline=settings.get("input_pipeline", ARRAYS),
        )
        seed = int(settings["seed"])
    except ValueError as exc:
        raise RerunError(f"run {run_id}: a setting param has a bad value: {exc}") from None
    return RerunPlan(
        run_id=run_id,
        experiment_id=run.info.experiment_id,
        parent_run_id=parent_id,
        study_name=tags.get(STUDY_TAG, ""),
        trial_number=int(tags.get("trial_number", -1)),
        spec=spec.model_copy(update={"train": train}),
        params=trial_params,
        seed=seed,
        settings=settings,
        data_sha256=tags.get(DATA_TAG) or parent.data.tags.get(DATA_TAG),
        tags=tags,
        original=original,
        notes=tuple(
            f"note: {what} {deleted.info.run_id} is deleted in MLflow (restore it with `mlflow "
            "runs restore`); the rerun is logged as an active run beside it"
            for what, deleted in (("run", run), ("its study's parent run", parent))
            if deleted.info.lifecycle_stage == "deleted"
        ),
    )


def rerun_backend(recorded: str | None, current: str | None, run_id: str
                  ) -> tuple[str | None, str | None]:
    """The Keras backend a rerun trains on: (the one to export as KERAS_BACKEND, or None to leave
    it as it is; a note for the user, or None).

    Keras fixes its backend when it is first imported, so the choice is made before that:
    - nothing chosen (`current` None: KERAS_BACKEND unset, Keras not imported yet): the run's own
      backend, refused when it is not installed here (the rerun could not repeat it);
    - a backend chosen (`current`): it is used; when it is not the run's, a note says so and the
      rerun still trains and compares (asking how another backend trains the same trial is
      legitimate; its numbers are not expected to match).

    Example:
        >>> rerun_backend("tensorflow", None, "3f2a")
        ('tensorflow', None)
        >>> rerun_backend("jax", "tensorflow", "3f2a")[1][:55]
        'note: run 3f2a trained on Keras backend jax; this rerun'
    """
    if current is None:
        if recorded is None:  # a run from before the backend was recorded: Keras's default
            return None, None
        try:
            check_backend(recorded, source="keras_backend")
        except BackendError as exc:
            raise RerunError(f"cannot rerun run {run_id} on its Keras backend: {exc}; or choose "
                             "another with KERAS_BACKEND (its numbers will differ)") from None
        return recorded, None
    if recorded is not None and recorded != current:
        return None, (f"note: run {run_id} trained on Keras backend {recorded}; this rerun trains "
                      f"on {current}: other kernels and random streams, so expect a difference, "
                      f"not a bitwise match (KERAS_BACKEND={recorded} repeats it)")
    return None, None


def check_data(plan: RerunPlan, data: Dataset) -> None:
    """Refuse data whose preprocessed arrays differ from those the original trained on."""
    if plan.data_sha256 is None or data.sha256() == plan.data_sha256:
        return
    raise RerunError(
        f"data changed: the {data_source(plan.spec)} data of experiment {plan.spec.name} hashes "
        f"to sha256 {data.sha256()[:16]}... after preprocessing, but run {plan.run_id} trained "
        f"on {plan.data_sha256[:16]}...; put the original file back (or point --data-dir at it)"
    )


def load_data(plan: RerunPlan, data_dir: str | None) -> Dataset:
    """The experiment's data as the search loads it; unreadable or changed data is a RerunError."""
    try:
        data = load_dataset(plan.spec, data_dir)
    except DataError as exc:  # the spec's own sha256 check fires before ours when it has one
        raise RerunError(
            f"data changed or unavailable: cannot load the {data_source(plan.spec)} data of "
            f"experiment {plan.spec.name} as run {plan.run_id} trained on it: {exc}"
        ) from None
    check_data(plan, data)
    return data


def retrain(plan: RerunPlan, data: Dataset, verbose: bool = False) -> TrialRecord:
    """Train the trial again exactly as the study did (no pruning callback) and record it."""
    import keras

    from search.callbacks import EpochRecorder
    from search.training import Diverged, fit_candidate

    recorder = EpochRecorder()
    result = None
    fail_reason = None
    started = time.perf_counter()
    try:
        result = fit_candidate(plan.params, data, task_kind(plan.spec.task), plan.spec.train,
                               plan.seed, recorder=recorder, verbose=2 if verbose else 0)
    except Diverged as exc:  # a diverged original diverges again: compared by its curves
        fail_reason = str(exc)
    finally:
        keras.backend.clear_session()
    settings = {**plan.settings, **backend_versions()}
    return record_from_fit(plan.trial_number, plan.params.flat(), settings, recorder.history,
                           result, fail_reason, seconds=time.perf_counter() - started)


def log_rerun(
    client: MlflowClient, plan: RerunPlan, record: TrialRecord, data: Dataset, command: str
) -> str:
    """Write the rerun as a new run beside the original (same study parent, same experiment)."""
    baseline = baseline_loss(plan.spec.task, data.y_train, data.n_classes)
    tags = {
        **run_tags(command, data.sha256()),
        ROLE_TAG: "rerun",  # not "trial": the study's own trial listing must not count it
        "rerun_of": plan.run_id,
        "rerun_epochs": str(plan.spec.train.max_epochs),
    }
    return log_trial_run(
        client, plan.experiment_id, plan.parent_run_id, plan.study_name, record,
        task_kind(plan.spec.task).curve_metric, data.class_names,
        diagnose_record(record, baseline, dict(plan.spec.diagnosis)),
        tags=tags, run_name=f"rerun-trial-{plan.trial_number:04d}",
    )


def outcome_of_record(record: TrialRecord, spec: ExperimentSpec) -> Outcome:
    """The rerun's outcome, with the same curves as `_outcome_of_run` reads from MLflow."""
    names = curve_names(spec)
    curves = {k: list(v) for k, v in record.history.items() if k in names}
    return Outcome(record.state, curves, record.best_epoch, dict(record.test))


def curve_names(spec: ExperimentSpec) -> tuple[str, ...]:
    """The per-epoch curves compared: loss, val_loss and the task metric on train and val."""
    metric = task_kind(spec.task).curve_metric
    return ("loss", "val_loss", metric, f"val_{metric}")


def data_source(spec: ExperimentSpec) -> str:
    """The data file or data set an experiment reads, for messages ("boston.csv", "iris")."""
    return spec.data.path or spec.data.dataset or "inline"


# --- reading MLflow ------------------------------------------------------------------------
def _get_run(client: MlflowClient, run_id: str, what: str = "") -> Run:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        label = f"{what} {run_id}" if what else f"run {run_id!r}"
        raise RerunError(f"no MLflow run found for {label}: {first_line(exc)}") from None


def _require_trial(run_id: str, tags: dict[str, str]) -> None:
    role = tags.get(ROLE_TAG)
    if role == "trial":
        return
    if role == "study":
        best = tags.get("best_run_id")
        hint = f" (its best trial is run {best})" if best else ""
        raise RerunError(f"run {run_id} is the parent run of study {tags.get(STUDY_TAG)!r}, not "
                         f"a trial: rerun one of its trial runs{hint}")
    if role == "rerun":
        raise RerunError(f"run {run_id} is itself a rerun of run {tags.get('rerun_of')}: "
                         "rerun the original")
    raise RerunError(f"run {run_id} is not a fitscope trial run (no tag {ROLE_TAG}=trial)")


def _trial_params(run_id: str, params: dict[str, str]) -> TrialParams:
    """TrialParams from the run's params; every missing one is named."""
    needed = [*HYPERPARAMS, *SETTINGS]
    try:
        needed += [f"units_{i}" for i in range(int(params.get("n_layers", 0)))]
    except ValueError:
        raise RerunError(f"run {run_id}: param n_layers={params['n_layers']!r} is not a "
                         "number") from None
    if params.get("optimizer") == "momentum":
        needed.append("momentum")  # else make_optimizer would quietly use its default
    missing = [name for name in needed if name not in params]
    if missing:
        raise RerunError(f"run {run_id} lacks the param(s) {', '.join(missing)}: cannot rebuild "
                         "the trial")
    try:
        return TrialParams.from_flat(params)
    except (KeyError, ValueError) as exc:
        raise RerunError(f"run {run_id}: its params do not form a trial: {exc}") from None


def _spec_of(client: MlflowClient, parent: Run) -> ExperimentSpec:
    """The resolved spec of the parent run: `spec.json` if logged, else its `spec.*` params."""
    from mlflow.exceptions import MlflowException

    parent_id = parent.info.run_id
    source = f"spec of study run {parent_id}"
    with tempfile.TemporaryDirectory(prefix="fitscope-rerun-") as tmp:
        try:
            path = client.download_artifacts(parent_id, SPEC_ARTIFACT, tmp)
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError):  # parents written before spec.json
            raw = spec_from_params(parent.data.params)
    if not raw:
        raise RerunError(f"study run {parent_id} records no spec ({SPEC_ARTIFACT} or spec.* "
                         "params): cannot rebuild the experiment")
    try:
        return parse_spec(as_written(raw), source=source)
    except FitscopeError as exc:
        raise RerunError(f"cannot rebuild the experiment: {exc}") from None


def as_written(raw: dict[str, Any]) -> dict[str, Any]:
    """A dumped spec in the form a YAML file writes: `{choices: [...]}` -> a list, `{value: v}`
    -> v (the spec's space parser reads the short forms; a range dict stays as it is)."""
    space = raw.get("space")
    if not isinstance(space, dict):
        return raw
    short = {}
    for name, param in space.items():
        if isinstance(param, dict) and set(param) == {"choices"}:
            param = list(param["choices"])
        elif isinstance(param, dict) and set(param) == {"value"}:
            param = param["value"]
        short[name] = param
    return {**raw, "space": short}


def spec_from_params(params: dict[str, str]) -> dict[str, Any]:
    """Rebuild the nested spec from a parent run's `spec.a.b` params (values as logged: str()).

    Example:
        >>> spec_from_params({"spec.name": "iris", "spec.train.max_epochs": "4"})
        {'name': 'iris', 'train': {'max_epochs': 4}}
    """
    raw: dict[str, Any] = {}
    for key, text in params.items():
        if not key.startswith("spec."):
            continue
        *parents, leaf = key.removeprefix("spec.").split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _literal(text)
    return raw


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)  # str() of lists, dicts, numbers, True, None
    except (ValueError, SyntaxError):
        return text  # a plain string (names, paths)


def _outcome_of_run(client: MlflowClient, run: Run, spec: ExperimentSpec) -> Outcome:
    curves = {}
    for name in curve_names(spec):
        if name in run.data.metrics:
            history = client.get_metric_history(run.info.run_id, name)
            curves[name] = [m.value for m in sorted(history, key=lambda m: m.step)]
    metrics = run.data.metrics
    best = metrics.get("best_epoch")
    return Outcome(
        state=run.data.tags.get("state", "COMPLETE"),
        curves=curves,
        best_epoch=None if best is None else int(best),
        test={k: v for k, v in metrics.items() if k.startswith("test_")},
    )


def _as_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"deterministic={text!r} is not true or false")

"""A study session: the one place that composes what a study needs.

    spec (+ CLI overrides) -> settings -> data -> baseline loss -> observers

Every command is a thin shell over it: `search` in one process, the launcher of local workers,
a worker, `compare` (one session per engine), `sync` (no data: what the study stored), and the
benchmarks. The MLflow observer of a study is built here and nowhere else.

Example:
    >>> spec = experiment_spec("iris", trials=5)  # doctest: +SKIP
    >>> settings = study_settings(spec, tracking_uri(None))  # doctest: +SKIP
    >>> session = load_session(spec, settings, tracking_uri(None), data_dir=None)  # doctest: +SKIP
    >>> run_study(spec, session.data, settings, session.observers())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.diagnosis import baseline_loss
from common.masking import mask_url
from experiments.data import load_dataset
from experiments.data.raw_inputs import fit_raw_inputs
from experiments.registry import load_spec
from experiments.spec import ExperimentSpec
from experiments.tasks import task_kind
from fitscope import settings as defaults
from fitscope.invocation import command_line
from fitscope.report_observer import ReportObserver
from reporting.console import ConsoleReporter
from search import record as trial_record
from search.study import StudySettings, default_study_name
from tracking.live import MlflowObserver
from tracking.study_runs import StudyRuns

if TYPE_CHECKING:
    import optuna

    from experiments.data import Dataset
    from fitscope.report_observer import ReportObserver
    from reporting.console import ConsoleReporter
    from tracking.live import MlflowObserver
    from tracking.study_runs import StudyRuns

tracking_uri = defaults.tracking_uri  # --tracking-uri, else MLFLOW_TRACKING_URI, else sqlite


def experiment_spec(
    experiment: str,
    trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    nondeterministic: bool = False,
) -> ExperimentSpec:
    """The experiment's spec with the command line's overrides applied (validated again)."""
    spec = load_spec(experiment).with_search(trials=trials, timeout=timeout, seed=seed)
    if nondeterministic:
        # part of the spec, so it also gets its own default study name: a study stays all
        # deterministic or all not, and its reproducibility claim holds for every trial
        train = spec.train.model_copy(update={"deterministic": False})
        spec = spec.model_copy(update={"train": train})
    return spec


def study_settings(
    spec: ExperimentSpec,
    tracking: str,
    study: str | None = None,
    storage: str | None = None,
    command: str | None = None,
    verbose: bool = False,
    **changes: Any,
) -> StudySettings:
    """Which study, where it is stored and how much to add: the spec's search block, the
    command line's names, and the default stores. `changes` replace fields (trials=0 for sync).
    """
    name = study or default_study_name(spec)
    settings = StudySettings(
        study_name=name,
        storage=defaults.storage_url(storage, tracking),
        trials=spec.search.trials,
        timeout=spec.search.timeout,
        seed=spec.search.seed,
        runs_dir=defaults.runs_dir(spec.name, name),
        verbose=verbose,
        command=command or command_line(),
    )
    return dataclasses.replace(settings, **changes)


def reports_dir(spec: ExperimentSpec, settings: StudySettings) -> Path:
    """reports/<experiment>/<study>/ (FITSCOPE_REPORTS_DIR moves it)."""
    return defaults.reports_dir(spec.name, settings.study_name)


def announce(title: str, settings: StudySettings, tracking: str, extra: str = "") -> None:
    """The first lines of a command that runs a study: what, where (passwords masked)."""
    print(f"{title}: study {settings.study_name}{extra}\n"
          f"  optuna storage {mask_url(settings.storage)}\n"
          f"  mlflow tracking {mask_url(tracking)}", flush=True)


@dataclass(frozen=True)
class StudySession:
    """What one process of a study shares with every observer it attaches.

    Attributes:
        spec: The experiment, with the command line's overrides.
        settings: The study's name, storage, budget, seed and command.
        tracking: The MLflow tracking URI as the user gave it.
        data: The loaded data set (None for `sync`, which trains nothing).
        class_names: Confusion-matrix labels (None for regression).
        baseline: The trivial predictor's loss, for the fit diagnosis.
        data_sha256: Hash of the preprocessed arrays, tagged on every run.
        data_dir: Where the data files were looked up (--data-dir): the best model's
            preprocessing is fitted again from them.
    """

    spec: ExperimentSpec
    settings: StudySettings
    tracking: str
    data: Dataset | None
    class_names: Sequence[str] | None
    baseline: float | None
    data_sha256: str | None
    data_dir: str | Path | None = None

    @property
    def headline(self) -> str:
        """The test metric the console leads with (test_accuracy or test_rmse)."""
        return task_kind(self.spec.task).headline_metric

    @property
    def reports_dir(self) -> Path:
        return reports_dir(self.spec, self.settings)

    def study_runs(self, uri: str | None = None, log_best_model: bool = True) -> StudyRuns:
        """The study's runs in MLflow; `uri` replaces the tracking URI (the launcher's server)."""
        return StudyRuns(uri or self.tracking, self.spec, self.settings, self.class_names,
                         self.baseline, self.data_sha256, log_best_model=log_best_model,
                         raw_inputs=functools.partial(fit_raw_inputs, self.spec, self.data_dir))

    def mlflow(
        self,
        role: str = "study",
        uri: str | None = None,
        log_best_model: bool = True,
        background: bool = True,
    ) -> MlflowObserver:
        """The study's live MLflow observer for this process's role
        (tracking/parent_policy.py)."""

        return MlflowObserver(self.study_runs(uri, log_best_model), role, background=background)

    def console(
        self, tracker: MlflowObserver | None = None, total: int | None = -1
    ) -> ConsoleReporter:
        """Progress bar, one line per trial and the closing summary; `total` None: no known
        total (a wall-clock budget), -1: the settings' trial count."""

        def hints() -> list[str]:
            parent = tracker.parent_run_id if tracker is not None else "?"
            lines = [f"MLflow: experiment {self.spec.name}, parent run {parent}; open `make ui`"]
            if tracker is not None and tracker.runs.experiment_id:
                # MLflow 3's UI starts on its GenAI view in a new browser; this opens the runs
                ui = self.tracking if self.tracking.startswith("http") else "http://127.0.0.1:5000"
                lines.append(f"  training runs: {mask_url(ui).rstrip('/')}/#/experiments/"
                             f"{tracker.runs.experiment_id}/runs?workflowType=machine_learning")
            lines += [f"use the winner: fitscope predict {self.spec.name} --input FILE "
                      f"(models:/{self.spec.name}@best; docs/using-a-winner.md)",
                      f"resume or extend: {self.settings.command}"]
            return lines

        trials = self.settings.trials if total == -1 else total
        return ConsoleReporter(trials, self.headline, self.baseline, dict(self.spec.diagnosis),
                               hints=hints)

    def report(self, uri: str | None = None) -> ReportObserver:
        """Builds report.html when the study ends and logs it on the parent run."""
        return ReportObserver(self.reports_dir, uri or self.tracking, self.settings.storage,
                              self.settings.command, self.class_names, dict(self.spec.diagnosis))

    def observers(self) -> list[Any]:
        """MLflow, the console and the report, in that order: the report comes last, so it sees
        the runs the tracker closed and prints after the console's summary."""
        tracker = self.mlflow()
        return [tracker, self.console(tracker), self.report()]


def load_session(
    spec: ExperimentSpec,
    settings: StudySettings,
    tracking: str,
    data_dir: str | Path | None,
    quiet: bool = False,
) -> StudySession:
    """Load the data once for the whole process and compose the session around it."""
    data = load_dataset(spec, data_dir)
    if not quiet:
        print(f"  data: {data.split_note}; {data.n_features} features", flush=True)
    return session_for(spec, settings, tracking, data, data_dir)


def session_for(
    spec: ExperimentSpec,
    settings: StudySettings,
    tracking: str,
    data: Dataset,
    data_dir: str | Path | None = None,
) -> StudySession:
    """The session around data already loaded (the benchmarks reuse one data set)."""
    return StudySession(
        spec=spec,
        settings=settings,
        tracking=tracking,
        data=data,
        class_names=data.class_names,
        baseline=baseline_loss(spec.task, data.y_train, data.n_classes),
        data_sha256=data.sha256(),
        data_dir=data_dir,
    )


def stored_session(
    spec: ExperimentSpec,
    settings: StudySettings,
    tracking: str,
    study: optuna.Study,
    data_dir: str | Path | None,
) -> StudySession:
    """A session from what the study stored (`sync`): no data is loaded, unless an old study
    lacks its class names."""
    attrs = study.user_attrs
    class_names = attrs.get(trial_record.CLASS_NAMES)
    if class_names is None and spec.task != "regression":  # a study from before it was kept

        class_names = load_dataset(spec, data_dir).class_names
    return StudySession(
        spec=spec,
        settings=settings,
        tracking=tracking,
        data=None,
        class_names=class_names,
        baseline=attrs.get(trial_record.BASELINE_LOSS),
        data_sha256=attrs.get(trial_record.DATA_SHA256),
        data_dir=data_dir,
    )

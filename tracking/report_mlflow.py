"""The report's link to MLflow: the study's parent run (for its command) and logging the report.

Optional by design: a report is built from the Optuna storage alone, and MLflow only adds the
original command line and a copy of the files on the parent run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from search.record import MLFLOW_PARENT as PARENT_ATTR

if TYPE_CHECKING:
    import optuna
    from mlflow.tracking import MlflowClient

ARTIFACT_DIR = "report"


@dataclass(frozen=True)
class ParentRun:
    """The MLflow parent run of a study, reached through its tracking store."""

    client: MlflowClient
    run_id: str
    command: str | None

    def log_report(self, folder: Path) -> None:
        """Copy every file of the report folder to the run's artifacts under `report/`."""
        self.client.log_artifacts(self.run_id, str(folder), artifact_path=ARTIFACT_DIR)


def find_parent_run(tracking_uri: str, study: optuna.Study) -> ParentRun | None:
    """The study's parent run, or None when the study was never tracked or the store is absent.

    An SQLite store that does not exist counts as absent (opening it would create an empty
    one). Other failures (a server that does not answer, a run id from another store) raise.
    """
    run_id = study.user_attrs.get(PARENT_ATTR)
    if not run_id:
        return None
    sqlite = tracking_uri.startswith("sqlite:///")
    if sqlite and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return None
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(str(run_id))
    return ParentRun(client, str(run_id), run.data.tags.get("command"))

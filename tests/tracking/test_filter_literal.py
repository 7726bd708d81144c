"""Names in MLflow filter strings: quoted so that a quote in a name can neither break the
search nor widen it (issue 18: names were interpolated as they came)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from common.errors import TrackingError
from tracking.study_runs import filter_literal

NAMES = ["iris-s42-1a2b3c4d", "it's", 'say "hi"', "x' or tags.role != '"]


def test_a_quoted_name_finds_exactly_its_run(workdir: Path, tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)  # one store: creating one takes seconds
    experiment = client.create_experiment("names")
    runs = {name: client.create_run(experiment, tags={"study": name, "role": "study"})
            for name in NAMES}
    for name, mine in runs.items():
        query = f"tags.`study` = {filter_literal(name)} and tags.`role` = 'study'"
        found = client.search_runs([experiment], filter_string=query)
        assert [run.info.run_id for run in found] == [mine.info.run_id], name


def test_a_name_mlflow_cannot_quote_is_refused() -> None:
    with pytest.raises(TrackingError, match="cannot look up the name"):
        filter_literal("both ' and \"")

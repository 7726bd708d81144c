"""The study report: built at the end of `fitscope search`, rebuilt by `fitscope report`, and
self-contained (opens offline: images as data URIs, plotly.js inlined once)."""

from __future__ import annotations

import csv
import logging
import math
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from analysis.diagnosis import FIT_CLASSES
from experiments.registry import load_spec
from fitscope.cli import main
from fitscope.report_observer import ReportObserver
from reporting.report import SECTIONS
from tests.conftest import mlflow_runs, write_spec

EVIDENCE = ("gap", "gap_ratio", "val_rise", "epochs_after_best", "train_vs_baseline",
            "tail_slope", "roughness")
# any tag that would load something from the network: src/href to http(s):// or //host
EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I
)
PLOTLY_BANNER = "* plotly.js v"  # the first comment line of plotly's bundled plotly.min.js


def assert_self_contained(page: str) -> None:
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert page.count(PLOTLY_BANNER) == 1  # inlined once, not per figure


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_search_ends_with_a_self_contained_report_logged_on_the_parent_run(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(workdir, "iris", train__max_epochs=4, train__patience=4)
    assert main(["search", str(spec), "--trials", "3", "--tracking-uri", tracking_uri]) == 0

    parent, children = mlflow_runs(tracking_uri, "iris")
    for child in children:  # the diagnosis of every trial, filterable in the MLflow UI
        assert child.data.tags["fit"] in FIT_CLASSES
        assert child.data.tags["fit_reason"]
        assert set(EVIDENCE) <= set(child.data.metrics)
    study = parent.data.tags["fitscope.study"]
    folder = workdir / "reports" / "iris" / study
    page = (folder / "report.html").read_text(encoding="utf-8")
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
    assert_self_contained(page)
    # overlay, best curves, confusion matrix (plotly.js itself holds one data URI: not an <img>)
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)) == 3
    assert "Plotly.newPlot" in page
    assert parent.data.tags["command"] in page.replace("&#x27;", "'")

    rows = read_csv(folder / "leaderboard.csv")
    assert sorted(int(r["trial"]) for r in rows) == [0, 1, 2]
    assert {"fit", "learning_rate", "best_val_loss", "best_epoch", "test_accuracy", "n_params",
            "seconds"} <= set(rows[0])
    assert rows[0]["rank"] == "1"
    fits = {int(c.data.tags["trial_number"]): c.data.tags["fit"] for c in children}
    assert {int(r["trial"]): r["fit"] for r in rows} == fits  # the same verdict everywhere
    best = min(children, key=lambda c: c.data.metrics["best_val_loss"])
    assert rows[0]["trial"] == best.data.tags["trial_number"]

    logged = MlflowClient(tracking_uri).list_artifacts(parent.info.run_id, "report")
    assert {"report/report.html", "report/leaderboard.csv", "report/curves_overlay.png",
            "report/fit_summary.txt"} <= {a.path for a in logged}
    out = capsys.readouterr().out
    assert "fit summary (trials per fit class and state):" in out
    assert f"report: reports/iris/{study}/report.html; logged on the MLflow parent run" in out


def _history(val: list[float]) -> dict[str, list[float]]:
    return {"loss": [v * 0.9 for v in val], "val_loss": val, "accuracy": [0.5] * len(val),
            "val_accuracy": [0.5] * len(val)}


def _trial(state: TrialState, lr: float, units: int, optimizer: str, val: list[float],
           **attrs: Any) -> optuna.trial.FrozenTrial:
    params = {"n_layers": 1, "units_0": units, "optimizer": optimizer, "learning_rate": lr}
    finite = [v for v in val if math.isfinite(v)]
    return optuna.trial.create_trial(
        state=state,
        value=min(finite) if state == TrialState.COMPLETE else None,
        params=params,
        distributions={
            "n_layers": IntDistribution(1, 3),
            "units_0": IntDistribution(8, 64, log=True),
            "optimizer": CategoricalDistribution(["sgd", "adam"]),
            "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        },
        intermediate_values={i: v for i, v in enumerate(val) if math.isfinite(v)},
        user_attrs={"params": params, "history": _history(val), **attrs},
    )


def hand_made_study(storage: str, name: str) -> optuna.Study:
    """A study as `fitscope search` leaves it, without training: one complete, one pruned,
    one diverged (NaN) trial and one still running."""
    study = optuna.create_study(study_name=name, storage=storage)
    study.set_user_attr("experiment", "iris")
    study.set_user_attr("spec", load_spec("iris").model_dump(mode="json"))
    study.set_user_attr("seed", 42)
    study.set_user_attr("baseline_loss", math.log(3))
    good = [1.0, 0.6, 0.45, 0.4, 0.38, 0.375, 0.372, 0.371, 0.37, 0.37]
    study.add_trial(_trial(TrialState.COMPLETE, 1e-2, 16, "adam", good, best_epoch=9,
                           test={"test_accuracy": 0.9}, confusion_matrix=[[9, 1], [0, 10]]))
    study.add_trial(_trial(TrialState.PRUNED, 1e-4, 8, "sgd", [1.2, 1.19, 1.18]))
    study.add_trial(_trial(TrialState.FAIL, 5e-2, 64, "sgd", [1.0, math.nan],
                           fail_reason="diverged: loss became NaN/inf at epoch 1"))
    study.ask()  # running: asked, never told
    return study


def test_report_command_builds_from_optuna_alone_while_the_study_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    hand_made_study(storage, "live")
    assert main(["report", "iris", "--study", "live"]) == 0  # no mlflow.db here

    folder = workdir / "reports" / "iris" / "live"
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "(study still running)" in page
    assert "reconstructed" in page  # no MLflow parent run to read the command from
    # one complete trial: Optuna cannot rank importances, and the report says so
    assert re.search(r'id="view-param_importances">.*?</h3>\s*<p class="note">not drawn', page)
    rows = {r["trial"]: r for r in read_csv(folder / "leaderboard.csv")}
    assert rows["0"]["fit"] == "good_fit" and rows["0"]["rank"] == "1"
    assert rows["1"]["fit"] == "underfit"  # pruned while still high
    assert rows["2"]["fit"] == "diverged"
    assert rows["3"]["state"] == "RUNNING" and rows["3"]["fit"] == "-"  # not judged mid-run
    summary = (folder / "fit_summary.txt").read_text()
    assert re.search(r"diverged\s+0\s+0\s+1\s+1", summary)  # COMPLETE PRUNED FAIL total
    assert not (workdir / "mlflow.db").exists()  # reading MLflow never creates a store
    assert capsys.readouterr().out.strip().endswith("report: reports/iris/live/report.html")


def test_report_command_finds_the_latest_study_of_the_experiment(workdir: Path) -> None:
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    hand_made_study(storage, "older")
    hand_made_study(storage, "newer")
    assert main(["report", "iris"]) == 0  # the default study name does not exist here
    assert (workdir / "reports" / "iris" / "newer" / "report.html").is_file()


def test_report_command_errors_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "iris"]) == 2
    assert "no Optuna storage at sqlite:///optuna.db" in capsys.readouterr().err
    hand_made_study(f"sqlite:///{workdir / 'optuna.db'}", "live")
    assert main(["report", "iris", "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["report", "titanic"]) == 2
    assert "no study of experiment 'titanic'" in capsys.readouterr().err


def test_a_failing_report_is_one_warning_not_a_failed_study(
    workdir: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    study = hand_made_study(f"sqlite:///{workdir / 'optuna.db'}", "live")
    blocker = workdir / "reports"
    blocker.write_text("a file where the report folder should go")
    observer = ReportObserver(blocker / "iris" / "live", None, "sqlite:///optuna.db", "cmd")
    with caplog.at_level(logging.WARNING):
        observer.on_study_end(study, "interrupted")
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "study report not built" in warning.getMessage()
    assert "fit summary" in capsys.readouterr().out  # printed before the report failed


def test_an_interrupted_study_still_gets_its_report(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = hand_made_study(f"sqlite:///{workdir / 'optuna.db'}", "stopped")
    folder = workdir / "reports" / "iris" / "stopped"
    observer = ReportObserver(folder, None, "sqlite:///optuna.db", "fitscope search iris")
    observer.on_study_end(study, "interrupted")
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<td>this invocation</td><td>interrupted</td>" in page
    assert "fitscope search iris" in page  # the command it was given, MLflow or not
    assert capsys.readouterr().out.strip().endswith(f"report: {folder / 'report.html'}")


def _one_view(folder: Path) -> list[Any]:
    from reporting.optuna_views import optuna_views

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    views = [v for v in optuna_views(study) if v.figure is not None][:1]
    assert views
    return views


def test_a_truncated_plotly_js_is_replaced_and_a_failed_write_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk left a truncated plotly.min.js, which plotly never rewrote (issue 18)."""
    import reporting.optuna_views as optuna_views_module
    from reporting.optuna_views import write_views

    views = _one_view(tmp_path)
    script = tmp_path / "plotly.min.js"
    script.write_text("/*! truncated by a full disk")
    write_views(views, tmp_path)
    from plotly.offline import get_plotlyjs

    assert script.read_text(encoding="utf-8") == get_plotlyjs()

    def disk_full(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(optuna_views_module.os, "replace", disk_full)
    full = tmp_path / "full"
    full.mkdir()
    with pytest.raises(OSError, match="No space left"):
        write_views(views, full)
    assert list(full.iterdir()) == []  # no partial script, and no page linking to none

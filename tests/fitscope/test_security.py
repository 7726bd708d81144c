"""Safe defaults: passwords never printed or recorded, MLflow's UI on 127.0.0.1 unless asked.

(Safe YAML, experiment names and https-only downloads: tests/fitscope/test_bad_input.py and
tests/experiments/.)
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import fitscope.commands.ui as ui_command
from common.masking import mask_text, mask_url
from fitscope.cli import main
from fitscope.invocation import command_line
from tests.conftest import write_spec
from tests.postgres import Cluster
from tests.processes import Fitscope, MlflowServer, free_port, wait_until

SECRET = "s3cret-Pa55"


def test_mask_url_and_mask_text() -> None:
    masked = "postgresql://ann:***@db:5432/optuna"
    assert mask_url(f"postgresql://ann:{SECRET}@db:5432/optuna") == masked
    assert mask_url("sqlite:///optuna.db") == "sqlite:///optuna.db"
    line = f"fitscope search iris --storage postgresql+psycopg://ann:{SECRET}@db/o --seed 1"
    assert mask_text(line) == line.replace(SECRET, "***")
    for plain in ("see http://host/runs/a@b", "sqlite:////tmp/a@b/optuna.db",
                  "http://127.0.0.1:5000/x", "mail ann@example.org"):
        assert mask_text(plain) == plain


# raw "/", "#", "?", "@" and "+" in a password: psycopg and SQLAlchemy accept them unencoded
# (issue 18: urlsplit ended the netloc at the "/" and printed the rest)
ODD_SECRETS = ["Sup3r/S3cretPW+x", "se/cret", "a#b?c", "p@ss@word", "x+y/z#q?r@s"]


@pytest.mark.parametrize("secret", ODD_SECRETS)
def test_passwords_with_url_delimiters_are_masked(secret: str) -> None:
    url = f"postgresql+psycopg://ann:{secret}@db.example:5432/optuna"
    assert mask_url(url) == "postgresql+psycopg://ann:***@db.example:5432/optuna"
    line = f"fitscope search xor --storage '{url}' --tracking-uri http://bob:{secret}@h:5000"
    assert secret not in mask_text(line)
    assert "--storage 'postgresql+psycopg://ann:***@db.example:5432/optuna'" in mask_text(line)
    assert "http://bob:***@h:5000" in mask_text(line)


@pytest.mark.parametrize("secret", ODD_SECRETS)
def test_the_recorded_command_line_hides_an_odd_password(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """What becomes the `command` tag, the resume hint and a worker's --command argument."""
    url = f"postgresql://ann:{secret}@db/optuna"
    monkeypatch.setattr(sys, "argv", ["fitscope", "search", "xor", "--storage", url])
    assert secret not in command_line()
    assert "postgresql://ann:***@db/optuna" in command_line()


@pytest.mark.parametrize("secret", [SECRET, *ODD_SECRETS])
@pytest.mark.parametrize("via", ["flag", "env"])
def test_storage_password_is_masked_in_output_and_errors(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, secret: str, via: str,
) -> None:
    url = f"postgresql://ann:{secret}@127.0.0.1:{free_port()}/optuna"  # nothing listens there
    if via == "env":
        monkeypatch.setenv("FITSCOPE_STORAGE", url)
        code = main(["search", "xor", "--tracking-uri", tracking_uri])
    else:
        code = main(["search", "xor", "--storage", url, "--tracking-uri", tracking_uri])
    out, err = capsys.readouterr()
    assert code == 2
    assert secret not in out + err
    assert "optuna storage postgresql://ann:***@127.0.0.1" in out
    assert err.startswith("fitscope: error: cannot open storage postgresql://ann:***@127.0.0.1")


def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, str]:
    """One in-process `fitscope` call as a user types it (sys.argv is what gets recorded)."""
    monkeypatch.setattr(sys, "argv", ["fitscope", *argv])
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def files_containing(folder: Path, secrets: tuple[str, ...]) -> list[Path]:
    """Every file under `folder` (stores, artifacts, reports, logs) holding one of `secrets`."""
    return [path for path in folder.rglob("*") if path.is_file()
            and any(secret.encode() in path.read_bytes() for secret in secrets)]


@pytest.mark.slow  # a real MLflow server, PostgreSQL and five commands that train
def test_no_command_prints_or_records_a_password(
    workdir: Path, postgres: Cluster, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """search, worker, sync, rerun and compare with a password in both URLs: it appears in no
    terminal line, MLflow param, tag or artifact, report, or any file they wrote."""
    storage = postgres.create_database("secrets")  # the cluster's real superuser password
    secrets = (SECRET, postgres.password)
    server = MlflowServer(workdir)
    server.start()
    try:
        # credentials in the URL: MLflow's client sends them as HTTP basic auth
        uri = server.uri.replace("http://", f"http://ann:{SECRET}@")
        spec = str(write_spec(workdir, "xor", train__max_epochs=2, train__patience=2))
        stores = ["--storage", storage, "--tracking-uri", uri]
        outputs = {}
        for name, argv in {
            "search": ["search", spec, "--trials", "1", *stores],
            "worker": ["worker", spec, "--trials", "1", *stores],
            "sync": ["sync", spec, *stores],
            "compare": ["compare", spec, "--budget", "0.5", *stores],
        }.items():
            code, outputs[name] = run_cli(capsys, monkeypatch, *argv)
            assert code == 0, outputs[name]
        client = MlflowClient(tracking_uri=server.uri)
        experiment = client.get_experiment_by_name("xor")
        assert experiment is not None
        trial = next(r for r in client.search_runs([experiment.experiment_id])
                     if r.data.tags.get("fitscope.role") == "trial")
        code, outputs["rerun"] = run_cli(capsys, monkeypatch, "rerun", trial.info.run_id,
                                         "--tracking-uri", uri)
        assert code == 0, outputs["rerun"]
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        artifacts = workdir / "downloaded"
        for run in runs:
            client.download_artifacts(run.info.run_id, "", str(artifacts / run.info.run_id))
    finally:
        server.stop()

    for name, text in outputs.items():
        assert not [s for s in secrets if s in text], f"{name} printed a password:\n{text}"
        assert "mlflow tracking http://ann:***@127.0.0.1" in text or name == "compare", name
    roles = {r.data.tags.get("fitscope.role") for r in runs}
    assert {"study", "trial", "rerun", "comparison"} <= roles
    for run in runs:
        recorded = {**run.data.params, **run.data.tags}
        leaks = {k: v for k, v in recorded.items() if any(s in v for s in secrets)}
        assert leaks == {}, leaks
    commands = [r.data.tags["command"] for r in runs if "command" in r.data.tags]
    assert any(c.startswith("fitscope rerun ") for c in commands)
    assert all("--tracking-uri http://ann:***@127.0.0.1" in c for c in commands), commands
    assert (workdir / "reports").is_dir() and any(artifacts.rglob("*.html"))
    # the MLflow server's own database and artifact store, the downloaded artifacts, the
    # reports and the runs folder: nothing anywhere holds either password
    assert files_containing(workdir, secrets) == []


# --- fitscope ui -------------------------------------------------------------------------------


def listen_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port` (Linux /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def group_commands(group: int) -> list[str]:
    """The command lines of the live processes in process group `group` (Linux /proc)."""
    commands = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # after the state: ppid, then pgrp
                commands.append((stat.parent / "cmdline").read_text().replace("\0", " "))
        except (OSError, IndexError, ValueError):
            continue  # ended while being read
    return commands


@pytest.mark.slow  # starts MLflow's server (several seconds)
def test_ui_binds_to_loopback_by_default(workdir: Path, tracking_uri: str) -> None:
    port = free_port()
    ui = Fitscope(["ui", "--port", str(port), "--tracking-uri", tracking_uri], cwd=workdir,
                  new_session=True)
    try:
        wait_until(lambda: listen_addresses(port), "MLflow's UI to listen", ui, every=0.25)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
        assert listen_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else
        # MLflow's server and its uvicorn only: the GenAI job runner and its huey consumers
        # (`python -m mlflow.server.jobs...`) stay off, a viewer needs none of them
        commands = group_commands(ui.proc.pid)
        assert commands and all(" -m mlflow server " in c or " -m uvicorn " in c
                                for c in commands), commands
    finally:
        ui.terminate_group()  # fitscope became `mlflow server` (exec), which has workers
        ui.wait(limit=60)
    assert "fitscope: warning" not in ui.stderr
    assert f"MLflow UI on http://127.0.0.1:{port}" in ui.stdout


def test_ui_elsewhere_needs_the_flag_and_warns(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[list[str]] = []
    environments: list[dict[str, str]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        started.append(argv)
        environments.append(env)

    # exec would replace the test process: record the command MLflow would run instead
    monkeypatch.setattr(ui_command.os, "execve", execve)
    main(["ui", "--tracking-uri", tracking_uri])
    out, err = capsys.readouterr()
    assert started[0][started[0].index("--host") + 1] == "127.0.0.1"
    assert err == ""
    # the store travels in the environment: `ps` shows a command line to every user
    assert tracking_uri not in " ".join(started[0])
    assert environments[0]["MLFLOW_BACKEND_STORE_URI"] == tracking_uri
    assert environments[0]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"  # no GenAI jobs

    main(["ui", "--host", "0.0.0.0", "--port", "5055", "--tracking-uri", tracking_uri])
    out, err = capsys.readouterr()
    assert started[1][started[1].index("--host") + 1] == "0.0.0.0"
    assert err.startswith("fitscope: warning: MLflow on 0.0.0.0:5055 can be reached from other")
    assert "no authentication unless its auth app is enabled" in err


def test_ui_refuses_a_tracking_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--tracking-uri", f"http://ann:{SECRET}@127.0.0.1:5000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fitscope: error: http://ann:***@127.0.0.1:5000 is a tracking server")
    assert SECRET not in err

"""Bad input through the real CLI: one line on stderr, `fitscope: error: ...` naming the field or
file and what was expected, exit code 2, no traceback (`--debug` shows it), and nothing trained.

Most cases call `fitscope.cli.main` in-process (each takes well under a second: the error comes
before TensorFlow is imported); a few run the installed console script, as a user would.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from fitscope.cli import main
from tests.conftest import FASHION_FILES, REPO, write_spec

FITSCOPE = Path(sys.executable).parent / "fitscope"


def fitscope(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits; the console script turns that into the code
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert line.startswith("fitscope: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def no_study_left(workdir: Path) -> bool:
    """A command that failed before training left no (empty) study in the storage."""
    db = workdir / "optuna.db"
    return not db.exists() or optuna.get_all_study_summaries(f"sqlite:///{db}") == []


def nothing_trained(workdir: Path) -> bool:
    """No Optuna study holds a trial (the storage may not even exist)."""
    db = workdir / "optuna.db"
    if not db.exists():
        return True
    storage = f"sqlite:///{db}"
    return all(s.n_trials == 0 for s in optuna.get_all_study_summaries(storage))


def spec_file(folder: Path, text: str, name: str = "bad.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_spec(folder: Path, csv_text: str, task: str = "binary", **data: Any) -> Path:
    """A CSV experiment over `csv_text` with target column `y`."""
    table = folder / "table.csv"
    table.write_text(csv_text, encoding="utf-8")
    raw = {
        "name": "table",
        "task": task,
        "data": {"source": "csv", "path": str(table), "target": "y", **data},
        "train": {"max_epochs": 2},
    }
    return spec_file(folder, yaml.safe_dump(raw), "table.yaml")


BINARY_CSV = "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30))


# --- experiments and spec files --------------------------------------------------------------


def test_unknown_experiment_lists_the_available_ones(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = fitscope(capsys, "search", "fashon")
    assert_one_line_error(code, err, "unknown experiment 'fashon'",
                          "available: bloodfat, boston, fashion, iris-pareto, iris, titanic, xor")


def test_spec_file_not_found(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = fitscope(capsys, "search", "experiments/mine.yaml")
    assert_one_line_error(code, err, "spec file not found: experiments/mine.yaml")


def test_invalid_yaml_names_file_and_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = spec_file(workdir, "name: x\ntask: binary\ndata: [csv\n")
    code, _, err = fitscope(capsys, "search", str(path))
    assert_one_line_error(code, err, f"{path}: invalid YAML (line 4)")


def test_yaml_tags_that_run_code_are_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = workdir / "pwned"
    path = spec_file(workdir, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    code, _, err = fitscope(capsys, "search", str(path))
    assert_one_line_error(code, err, "invalid YAML")
    assert not marker.exists()


def test_unknown_key_is_named_with_the_closest_valid_key(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_spec(workdir, "iris", space__optimzer=["adam"])
    code, _, err = fitscope(capsys, "search", str(path))
    assert_one_line_error(code, err, "space.optimzer: unknown key (did you mean 'optimizer'?)")


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"train__max_epochs": "many"}, ["train.max_epochs", "valid integer", "'many'"]),
        ({"search__trials": [3]}, ["search.trials", "valid integer"]),
        ({"space__units": {"low": 64, "high": 8}},
         ["space.units", "low (64) must not exceed high (8)"]),
        ({"space__learning_rate": 0}, ["space.learning_rate", "a number > 0", "got 0"]),
        ({"space__learning_rate": {"low": -0.1, "high": 0.1}},
         ["space.learning_rate", "a number > 0", "-0.1"]),
        ({"space__n_layers": 0}, ["space.n_layers", "an integer >= 1", "got 0"]),
        ({"space__optimizer": ["adam", "adamw"]},
         ["space.optimizer", "'adamw'", "sgd, momentum, rmsprop, adam, adagrad"]),
        ({"space__activation": "softmaxx"}, ["space.activation", "'softmaxx'", "relu"]),
        ({"name": "Iris Big"}, ["name", "^[a-z0-9][a-z0-9_-]*$"]),
        # issue 18: values that made every trial fail with a false reason, or a traceback
        ({"space__units": {"low": 8, "high": 64, "step": -4}},
         ["space.units", "step must be a number > 0, got -4"]),
        ({"space__dropout": {"low": 0.0, "high": 0.5, "step": 0}},
         ["space.dropout", "step must be a number > 0, got 0"]),
        ({"space__units": {"low": 8, "high": 64, "step": 2.5}},
         ["space.units: expected a whole-number step, got 2.5"]),
        ({"space__learning_rate": {"low": 1e-4, "high": float("inf")}},
         ["space.learning_rate", "low and high must be finite numbers"]),
        ({"train__steps_per_execution": 2**31},
         ["train.steps_per_execution", "less than or equal to 100000"]),
        ({"search__seed": -1}, ["search.seed", "greater than or equal to 0"]),
        ({"search__seed": 2**32}, ["search.seed", "less than 4294967296"]),
        ({"data__columns": ["a", "b", "a"]},
         ["data.columns", "column names must be unique; repeated: ['a']"]),
        ({"space__units": [[8, 16], [[32]]]},
         ["space.units: expected an integer >= 1, got a list"]),
        ({"space__activation": [["relu"] * 300] * 300},
         ["space.activation: expected a name", "got a list"]),
        ({"train__max_epochs": "x" * 100_000}, ["train.max_epochs", "valid integer", "..."]),
    ],
    ids=["wrong-type", "list-for-int", "low>high", "lr-zero", "lr-negative", "no-layers",
         "optimizer", "activation", "name", "negative-step", "zero-step", "fractional-int-step",
         "infinite-bound", "huge-steps-per-execution", "seed-negative", "seed-2**32",
         "duplicate-columns", "nested-list", "huge-list", "huge-string"],
)
def test_invalid_spec_values_name_the_field_and_the_expectation(
    workdir: Path, capsys: pytest.CaptureFixture[str], overrides: dict, fragments: list[str]
) -> None:
    path = write_spec(workdir, "iris", **overrides)
    code, _, err = fitscope(capsys, "search", str(path))
    line = assert_one_line_error(code, err, *fragments)
    assert str(path) in line
    assert nothing_trained(workdir)
    assert len(line) < 400  # a value is named, never dumped


# a YAML alias bomb: 600 bytes that expand to 9**9 values (issue 18)
ALIAS_BOMB = "name: bomb\ntask: binary\ndata: {source: generated, dataset: xor}\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
).replace("[*l0", "[1").replace(", *l0", ", 1") + "space: {units: [*l8, 8]}\n"


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (ALIAS_BOMB.encode(), ["more than 200000 values once YAML aliases expand"]),
        (b"name: x\ntask: binary\ndata: " + b"[" * 3000 + b"]" * 3000 + b"\n",
         ["nested deeper than 32 levels (line 3)"]),
        (b"name: xor\ntask: binary\ndata: {source: generated, dataset: xor}\nname: other\n",
         ["invalid YAML (line 4): duplicate key 'name'"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ["not a UTF-8 text file (byte 0)"]),
        ("name: caf\xe9\n".encode("latin-1"), ["not a UTF-8 text file (byte 9)"]),
        (b"name: x\n#" + b"#" * 1_000_000, ["spec larger than 1000000 bytes"]),
    ],
    ids=["alias-bomb", "deep-nesting", "duplicate-key", "binary", "latin-1", "too-big"],
)
def test_unusable_spec_files_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragments: list[str]
) -> None:
    path = workdir / "bad.yaml"
    path.write_bytes(content)
    code, _, err = fitscope(capsys, "search", str(path))
    line = assert_one_line_error(code, err, f"{path}: ", *fragments)
    assert len(line) < 400
    assert nothing_trained(workdir)


@pytest.mark.parametrize(
    ("seed", "fragment"),
    [("-1", "--seed -1: input should be greater than or equal to 0"),
     (str(2**32), f"--seed {2**32}: input should be less than 4294967296")],
    ids=["negative", "2**32"],
)
def test_seed_out_of_range_on_the_command_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], seed: str, fragment: str
) -> None:
    code, _, err = fitscope(capsys, "search", "xor", "--seed", seed)
    assert_one_line_error(code, err, fragment)
    assert nothing_trained(workdir)


# --- data files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("csv_text", "data", "fragments"),
    [
        (BINARY_CSV, {"target": "label"},
         ["table.csv: target column 'label' not found", "available: a, b, y"]),
        (BINARY_CSV.replace("\n7,1,", "\n7,seven,"), {},
         ["table.csv: column 'b' must be numeric", "'seven'"]),
        ("", {}, ["table.csv: empty file"]),
        ("a,b,y\n", {}, ["table.csv: no data rows"]),
        ("a,y\n" + "".join(f"{i},1\n" for i in range(30)), {},
         ["table.csv: target column 'y' has a single class"]),
        # issue 18: every trial "diverged", or the column vanished with a library warning
        ("a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.5}\n" for i in range(30)).replace(
            "\n7,1,3.5\n", "\n7,1,inf\n"), {"task": "regression"},
         ["table.csv: regression target 'y' holds an infinite value (data row 8)"]),
        (BINARY_CSV.replace("\n7,1,", "\n7,-inf,"), {},
         ["table.csv: column 'b' holds an infinite value (data row 8)"]),
        ("a,b,y\n" + "".join(f"{i},,{i % 2}\n" for i in range(30)), {},
         ["table.csv: column 'b' has no values at all; list it in data.drop"]),
    ],
    ids=["no-target-column", "text-in-numeric-column", "empty", "header-only", "single-class",
         "inf-in-target", "inf-in-feature", "all-nan-column"],
)
def test_bad_csv_names_file_and_problem(
    workdir: Path, capsys: pytest.CaptureFixture[str], csv_text: str, data: dict,
    fragments: list[str],
) -> None:
    task = data.pop("task", "binary")
    path = csv_spec(workdir, csv_text, task, **data)
    code, _, err = fitscope(capsys, "search", str(path))
    assert_one_line_error(code, err, *fragments)
    assert no_study_left(workdir)  # issue 18: the study was created before the data failed


@pytest.mark.parametrize("argv", [["worker"], ["search", "--workers", "1"]],
                         ids=["worker", "launcher"])
def test_a_data_error_leaves_no_study_behind(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    path = csv_spec(workdir, BINARY_CSV.replace("\n7,1,", "\n7,seven,"))
    code, _, err = fitscope(capsys, *argv[:1], str(path), *argv[1:], "--trials", "1")
    assert_one_line_error(code, err, "table.csv: column 'b' must be numeric")
    assert no_study_left(workdir)


def test_truncated_idx_file_in_data_dir(
    workdir: Path, capsys: pytest.CaptureFixture[str], fashion_dir: Path
) -> None:
    folder = workdir / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in FASHION_FILES:
        (folder / name).symlink_to(fashion_dir / name)
    whole = (fashion_dir / "train-labels-idx1-ubyte.gz").read_bytes()
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    code, _, err = fitscope(capsys, "search", "fashion", "--data-dir", str(workdir / "data"))
    assert_one_line_error(code, err, "train-labels-idx1-ubyte.gz")
    assert nothing_trained(workdir)


def test_local_file_with_wrong_checksum(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "0" * 64
    path = csv_spec(workdir, BINARY_CSV, sha256=wrong)
    code, _, err = fitscope(capsys, "search", str(path))
    assert_one_line_error(code, err, "table.csv: checksum mismatch", wrong)


# A download over real HTTPS: a local server with a self-signed certificate that this process
# trusts through SSL_CERT_FILE (OpenSSL reads it for every new default context).


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) of an HTTPS server on 127.0.0.1 that this process trusts."""
    served = tmp_path / "served"
    served.mkdir()
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # keep stderr for fitscope
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_download_with_wrong_checksum_never_enters_the_cache(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    https_server: tuple[str, Path],
) -> None:
    base, served = https_server
    (served / "remote.csv").write_text(BINARY_CSV)
    cache = workdir / "cache"
    monkeypatch.setenv("FITSCOPE_CACHE_DIR", str(cache))
    wrong = "f" * 64
    raw = {"name": "remote", "task": "binary", "data": {
        "source": "csv", "path": f"{base}/remote.csv", "target": "y", "sha256": wrong}}
    path = spec_file(workdir, yaml.safe_dump(raw), "remote.yaml")
    code, _, err = fitscope(capsys, "search", str(path))
    assert_one_line_error(code, err, "checksum mismatch", wrong)
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # nor a partial .part file
    assert nothing_trained(workdir)


def test_plain_http_download_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = {"name": "remote", "task": "binary", "data": {
        "source": "csv", "path": "http://127.0.0.1:9/remote.csv", "target": "y"}}
    path = spec_file(workdir, yaml.safe_dump(raw), "remote.yaml")
    code, _, err = fitscope(capsys, "search", str(path))
    assert_one_line_error(code, err, "only https:// URLs are accepted")


# --- command-line values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--trials", "0"], ["argument --trials: expected a whole number >= 1, got 0"]),
        (["--trials", "-3"], ["argument --trials: expected a whole number >= 1, got -3"]),
        (["--trials", "abc"], ["argument --trials: expected a whole number >= 1, got 'abc'"]),
        (["--timeout", "-5"], ["argument --timeout: expected seconds > 0, got -5"]),
        (["--timeout", "soon"], ["argument --timeout: expected seconds > 0, got 'soon'"]),
        (["--seed", "x"], ["argument --seed: expected a whole number, got 'x'"]),
        (["--study", "../../../../elsewhere/pwn"],
         ["argument --study: expected a study name matching", "'../../../../elsewhere/pwn'"]),
        (["--study", "/tmp/pwn"], ["argument --study: expected a study name", "'/tmp/pwn'"]),
        (["--study", "it's"], ["argument --study: expected a study name", "\"it's\""]),
        (["--study", ".."], ["argument --study: expected a study name", "'..'"]),
    ],
    ids=["trials-0", "trials-negative", "trials-text", "timeout-negative", "timeout-text",
         "seed-text", "study-traversal", "study-absolute", "study-quote", "study-dotdot"],
)
def test_bad_option_values_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]
) -> None:
    code, out, err = fitscope(capsys, "search", "iris", *argv)
    assert_one_line_error(code, err, *fragments, "fitscope search --help")
    assert "usage:" not in err + out


@pytest.mark.parametrize("command", ["search", "worker", "sync", "report"])
def test_every_study_flag_refuses_a_path(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, _, err = fitscope(capsys, command, "iris", "--study", "../../elsewhere/pwn")
    assert_one_line_error(code, err, "argument --study: expected a study name")
    assert not (workdir.parent / "elsewhere").exists()


def test_a_stored_study_name_cannot_lead_outside_reports(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a name that reached the storage some other way (an older fitscope, optuna itself)
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    study = optuna.create_study(study_name="../../../pwn", storage=storage)
    study.set_user_attr("experiment", "iris")
    code, _, err = fitscope(capsys, "report", "iris")
    assert_one_line_error(code, err, "'iris/../../../pwn' would leave the folder reports")
    assert not (workdir.parent / "pwn").exists()


@pytest.mark.parametrize(
    "argv", [["search", "iris"], ["search", "iris", "--engine", "kerastuner"], ["worker", "iris"],
             ["sync", "iris"]],
    ids=["search", "search-kerastuner", "worker", "sync"],
)
def test_a_study_of_another_experiment_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    theirs = optuna.create_study(study_name="xor-study", storage=storage)
    theirs.set_user_attr("experiment", "xor")
    budget = [] if argv[0] == "sync" else ["--trials", "1"]
    code, _, err = fitscope(capsys, *argv, "--study", "xor-study", *budget)
    assert_one_line_error(code, err, "study xor-study belongs to experiment 'xor', not 'iris'",
                          "choose another --study")
    assert nothing_trained(workdir)
    assert optuna.load_study(study_name="xor-study", storage=storage).user_attrs == {
        "experiment": "xor"}


@pytest.mark.parametrize("command", ["ui", "dashboard"])
def test_a_busy_port_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    import fitscope.commands.ui as ui_command

    # were the check missing, ui would exec MLflow's server here: record it instead
    monkeypatch.setattr(ui_command.os, "execve", lambda *args: None)
    optuna.create_study(storage=f"sqlite:///{workdir / 'optuna.db'}")  # dashboard needs one
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = fitscope(capsys, command, "--port", str(port))
    assert_one_line_error(code, err, f"cannot listen on 127.0.0.1:{port}: in use",
                          "choose another --port")


@pytest.mark.parametrize(
    ("argv", "env", "fragments"),
    [
        (["--gpus", "abc"], {}, ["--gpus 'abc': expected GPU ids like 0,1", "got 'abc'"]),
        (["--gpus", "0,x1"], {}, ["expected GPU ids like 0,1", "got 'x1'"]),
        (["--gpus", "7"], {"CUDA_VISIBLE_DEVICES": ""},
         ["--gpus '7': GPU 7 is not visible here (visible: none)"]),
        (["--trials", "1"], {"FITSCOPE_HEARTBEAT_INTERVAL": "abc"},
         ["FITSCOPE_HEARTBEAT_INTERVAL: expected whole seconds >= 1, got 'abc'"]),
        (["--tracking-uri", "foo://bar"], {},
         ["unsupported MLflow tracking URI foo://bar", "sqlite:///FILE"]),
        (["--tracking-uri", "./mlruns"], {},
         ["MLflow tracking URI ./mlruns is a file store", "sqlite:///mlflow.db"]),
        (["--tracking-uri", "file:///tmp/mlruns"], {}, ["is a file store"]),
    ],
    ids=["gpus-text", "gpus-partly-text", "gpus-not-visible", "heartbeat-text",
         "tracking-scheme", "tracking-file-path", "tracking-file-uri"],
)
def test_bad_environment_values_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], env: dict[str, str], fragments: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    code, _, err = fitscope(capsys, "search", "xor", *argv)
    assert_one_line_error(code, err, *fragments)
    assert nothing_trained(workdir)


@pytest.mark.parametrize("argv", [["search", "xor"], ["sync", "xor"],
                                  ["rerun", "0123456789abcdef0123456789abcdef"]],
                         ids=["search", "sync", "rerun"])
def test_a_corrupt_tracking_database_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    (workdir / "mlflow.db").write_bytes(b"not a database, " * 500)
    code, _, err = fitscope(capsys, *argv)
    assert_one_line_error(code, err, f"MLflow tracking database {workdir / 'mlflow.db'} is "
                          "unreadable (file is not a database)")


def test_missing_argument_and_unknown_command_are_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = fitscope(capsys, "search")
    assert_one_line_error(code, err, "the following arguments are required: experiment")
    code, _, err = fitscope(capsys, "serch", "iris")
    assert_one_line_error(code, err, "invalid choice: 'serch'")


def test_help_still_shows_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fitscope(capsys, "search", "--help")
    assert code == 0
    assert "usage: fitscope search" in out


# --- stores and output directories ---------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def test_unreachable_tracking_server_fails_before_data_or_training(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the spec's data file does not exist: the tracking check must come first to be seen
    raw = {"name": "table", "task": "binary",
           "data": {"source": "csv", "path": str(workdir / "missing.csv"), "target": "y"}}
    path = spec_file(workdir, yaml.safe_dump(raw), "table.yaml")
    uri = f"http://127.0.0.1:{_closed_port()}"
    code, _, err = fitscope(capsys, "search", str(path), "--tracking-uri", uri)
    assert_one_line_error(code, err, f"MLflow tracking server {uri} is not reachable",
                          "--tracking-uri")
    assert not (workdir / "optuna.db").exists()  # not even the study was created


def test_tracking_database_in_an_unwritable_folder(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc refuses new files even to root (a chmod'ed folder would not stop root)
    code, _, err = fitscope(capsys, "search", "iris", "--tracking-uri", "sqlite:////proc/mlflow.db",
                            "--storage", f"sqlite:///{workdir / 'optuna.db'}")
    assert_one_line_error(code, err, "MLflow tracking folder /proc is not writable")
    assert nothing_trained(workdir)


def test_tracking_database_in_a_missing_folder(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{workdir / 'no-such-dir' / 'mlflow.db'}"
    code, _, err = fitscope(capsys, "search", "iris", "--tracking-uri", uri)
    assert_one_line_error(code, err, f"{workdir / 'no-such-dir'} does not exist")


def test_unwritable_runs_dir(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FITSCOPE_RUNS_DIR", "/proc/fitscope-runs")
    code, _, err = fitscope(capsys, "search", "iris")
    assert_one_line_error(code, err, "runs dir (FITSCOPE_RUNS_DIR) /proc/fitscope-runs",
                          "not writable")
    assert nothing_trained(workdir)


def test_runs_dir_below_a_file(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "taken").write_text("a file, not a folder")
    monkeypatch.setenv("FITSCOPE_RUNS_DIR", str(workdir / "taken"))
    code, _, err = fitscope(capsys, "search", "iris")
    assert_one_line_error(code, err, f"runs dir (FITSCOPE_RUNS_DIR) {workdir / 'taken'}",
                          "not writable")


def test_unwritable_reports_dir(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FITSCOPE_REPORTS_DIR", "/proc/fitscope-reports")
    code, _, err = fitscope(capsys, "search", "iris")
    assert_one_line_error(code, err, "reports dir (FITSCOPE_REPORTS_DIR) /proc/fitscope-reports",
                          "not writable")
    assert nothing_trained(workdir)


@pytest.mark.parametrize(
    ("storage", "fragments"),
    [
        ("mongodb://db/optuna", ["invalid storage URL 'mongodb://db/optuna'",
                                 "expected sqlite:///FILE, postgresql://"]),
        ("sqlite:////proc/optuna.db", ["storage sqlite:////proc/optuna.db",
                                       "/proc is not writable"]),
    ],
    ids=["scheme", "unwritable"],
)
def test_invalid_storage(
    workdir: Path, capsys: pytest.CaptureFixture[str], storage: str, fragments: list[str]
) -> None:
    code, _, err = fitscope(capsys, "search", "iris", "--storage", storage)
    assert_one_line_error(code, err, *fragments)


def test_rerun_of_an_unknown_run_id(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).search_experiments()  # creates the empty store
    code, _, err = fitscope(capsys, "rerun", "0123456789abcdef0123456789abcdef",
                            "--tracking-uri", tracking_uri)
    assert_one_line_error(code, err, "0123456789abcdef0123456789abcdef")


# --- the installed console script ----------------------------------------------------------------


def run_script(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([str(FITSCOPE), *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["search", "iris", "--trials", "abc"], ["argument --trials", "'abc'"]),
        (["search", "nope"], ["unknown experiment 'nope'", "available:"]),
        (["search", "iris", "--tracking-uri", "http://127.0.0.1:9"], ["not reachable"]),
    ],
    ids=["trials", "experiment", "tracking"],
)
def test_console_script_prints_one_line_and_exits_2(
    workdir: Path, argv: list[str], fragments: list[str]
) -> None:
    done = run_script(*argv, cwd=workdir)
    assert_one_line_error(done.returncode, done.stderr, *fragments)


def test_debug_shows_the_traceback(workdir: Path) -> None:
    done = run_script("--debug", "search", "nope", cwd=workdir)
    assert done.returncode != 0
    assert "Traceback" in done.stderr
    assert "SpecError: unknown experiment 'nope'" in done.stderr

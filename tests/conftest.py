"""Shared fixtures: real data from the repository and what it installs, a temporary MLflow
store, quiet TensorFlow.

Test data never comes from outside the repository: the tabular files ship in
experiments/datasets/, Fashion-MNIST comes from Debian's `dataset-fashion-mnist` (which `make
test` installs when it runs as root) or fitscope's own checksummed download into the user cache.
FITSCOPE_DATA_DIR is honoured when a developer sets it, never defaulted.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from common.errors import DataError
from experiments.data.catalog import BUNDLED_DIR, IDX_DATASETS
from experiments.data.locations import cache_dir, data_dir_from

if TYPE_CHECKING:
    from tests.postgres import Cluster

REPO = Path(__file__).resolve().parents[1]
TABULAR = BUNDLED_DIR  # boston.csv, titanic_simple.csv, x09.txt as the package ships them
FASHION_FILES = tuple(
    getattr(IDX_DATASETS["fashion-mnist"], part)
    for part in ("train_images", "train_labels", "test_images", "test_labels")
)
USER_CACHE = cache_dir()  # read before the session points FITSCOPE_CACHE_DIR elsewhere

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The files whose tests start servers, workers and other processes, longest first (seconds in
# one `make test` on 2 cores, 2026-11-30). `make test` hands whole files to its two test
# processes in collection order: run last, a 3-minute file kept one process busy while the other
# had finished, so they go first and the many short files fill in behind them.
LONGEST_FIRST = (
    "search/test_workers.py",  # 126 (alone)
    "fitscope/test_worker_command.py",  # 103 (alone)
    "tracking/test_mlflow_outage.py",  # 137
    "fitscope/test_confirm.py",  # 130
    "fitscope/test_stopped_processes.py",  # 110
    "fitscope/test_search_command.py",
    "tracking/test_rerun.py",
    "fitscope/test_security.py",
    "fitscope/test_faults.py",
    "fitscope/test_pareto.py",
    "search/test_kerastuner_engine.py",
    "fitscope/test_worker_sigterm.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        tests = REPO / "tests"
        path = item.path.relative_to(tests).as_posix() if item.path.is_relative_to(tests) else ""
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order, the rest theirs


def pytest_configure(config: pytest.Config) -> None:
    import signal

    # A shell without job control starts a background job (`make test &`, `nohup ... &`) with
    # SIGINT ignored, every process it starts inherits that, and Python then installs no
    # KeyboardInterrupt handler: the tests that Ctrl-C a `fitscope confirm` they started saw it
    # carry on (2026-12-02). A user's background job ignoring Ctrl-C is the shell's intent; the
    # tests' children must get the Ctrl-C of a foreground terminal whatever started pytest.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _signal_handlers_unchanged() -> Iterator[None]:
    """No test may leave this process's SIGINT or SIGTERM handler changed: the later tests, and
    every process they start, would run under it (an in-process `fitscope search` used to leave
    its SIGTERM handler behind; an ignored SIGINT is inherited, see pytest_configure)."""
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    kernel_before = _kernel_signal_state()
    yield
    after = {sig: signal.getsignal(sig) for sig in before}
    kernel_after = _kernel_signal_state()
    for sig, handler in before.items():
        if handler is not None:
            signal.signal(sig, handler)  # the next tests run as they would have
    changed = [f"{sig.name}: {before[sig]} -> {after[sig]}" for sig in before
               if after[sig] != before[sig]]
    if kernel_after != kernel_before:
        changed.append(f"ignored/blocked in the kernel: {kernel_before} -> {kernel_after}")
    assert not changed, f"the test left signal handlers changed: {'; '.join(changed)}"


def _kernel_signal_state() -> dict[str, list[str]]:
    """Which of SIGINT and SIGTERM the kernel ignores or blocks for this process's main thread
    (/proc: a library can set either in C, where `signal.getsignal` does not see it; children
    inherit both)."""
    import signal

    fields = dict(line.split(":\t", 1) for line in
                  Path("/proc/self/status").read_text().splitlines() if ":\t" in line)
    return {field: [sig.name for sig in (signal.SIGINT, signal.SIGTERM)
                    if int(fields[field], 16) >> (sig - 1) & 1]
            for field in ("SigIgn", "SigBlk")}


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # downloads and cached arrays of a test session never touch the user's ~/.cache; a
    # Fashion-MNIST download already there is linked in, so no session downloads it twice
    cache = tmp_path_factory.mktemp("fitscope-cache")
    downloaded = USER_CACHE / "fashion-mnist"
    if all((downloaded / name).is_file() for name in FASHION_FILES):
        (cache / "fashion-mnist").symlink_to(downloaded)
    os.environ["FITSCOPE_CACHE_DIR"] = str(cache)


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """The folder holding the four official Fashion-MNIST files, found the way fitscope finds
    them (FITSCOPE_DATA_DIR, the user cache, Debian's package), else downloaded and verified into
    the user cache. Fails with the fix when none of that works (offline, not root)."""
    from experiments.data.resolve import resolve_named

    fashion = IDX_DATASETS["fashion-mnist"]
    previous = os.environ.get("FITSCOPE_CACHE_DIR")
    os.environ["FITSCOPE_CACHE_DIR"] = str(USER_CACHE)
    try:
        found = [
            resolve_named(name, data_dir_from(None), None, fashion.system_dirs, fashion.apt_package)
            for name in FASHION_FILES
        ]
    except DataError as err:
        pytest.fail(f"Fashion-MNIST is not available: {err} (`make test` installs it as root)")
    finally:
        if previous is None:
            os.environ.pop("FITSCOPE_CACHE_DIR", None)
        else:
            os.environ["FITSCOPE_CACHE_DIR"] = previous
    folders = {path.parent for path, _ in found}
    assert len(folders) == 1, f"Fashion-MNIST files split across {sorted(folders)}"
    return folders.pop()


def use_as_workdir(patch: pytest.MonkeyPatch, folder: Path) -> None:
    """`folder` as a user's working directory: the cwd, no store inherited from the environment,
    reports/ and runs/ inside it (module fixtures pass a `pytest.MonkeyPatch.context()`)."""
    patch.chdir(folder)
    for name in ("MLFLOW_TRACKING_URI", "FITSCOPE_STORAGE", "FITSCOPE_REPORTS_DIR"):
        patch.delenv(name, raising=False)
    patch.setenv("FITSCOPE_RUNS_DIR", str(folder / "runs"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working directory with its own MLflow store and Optuna storage."""
    use_as_workdir(monkeypatch, tmp_path)
    return tmp_path


@functools.cache
def _mlflow_template() -> Path:
    """An MLflow SQLite store with its schema made and nothing in it, once per test process.
    Making one runs MLflow's schema migrations, ~2.5 s on 2 cores, which every test that only
    needs *a* store would pay again; the tests that start a user's first search in an empty
    folder (and the launcher's own server there) still pay it."""
    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="fitscope-mlflow-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def empty_mlflow_store(path: Path) -> str:
    """A copy of the empty, already-migrated MLflow store at `path`; its tracking URI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_mlflow_template(), path)
    return f"sqlite:///{path}"


@pytest.fixture
def tracking_uri(workdir: Path) -> str:
    return empty_mlflow_store(workdir / "mlflow.db")


def write_spec(folder: Path, base: str, **overrides: object) -> Path:
    """A shipped spec with some fields replaced (`train__max_epochs=3`), saved as YAML."""
    import yaml

    from experiments.registry import shipped_specs

    raw = yaml.safe_load(shipped_specs()[base].read_text())
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = folder / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def mlflow_runs(tracking_uri: str, experiment: str) -> tuple[object, list]:
    """(parent run, child runs sorted by trial number) of the experiment's only study."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("fitscope.role") == "study"]
    children = [r for r in runs if r.data.tags.get("fitscope.role") == "trial"]
    assert len(parents) == 1, f"expected one parent run, found {len(parents)}"
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["trial_number"]))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for the session (tests/postgres.py); each test creates its
    own database with `postgres.create_database(name)`.

    Skipped only where PostgreSQL is not installed at all and FITSCOPE_REQUIRE_POSTGRES is unset;
    .ci/run installs it and sets that, so CI fails rather than skips.
    """
    from tests.postgres import initdb_path, throwaway_cluster

    if initdb_path() is None:
        if os.environ.get("FITSCOPE_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required here: apt-get install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    with throwaway_cluster() as cluster:
        yield cluster

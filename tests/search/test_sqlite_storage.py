"""A SQLite study storage: write-ahead log, no fsync per commit, and nothing committed lost when
the writing process is killed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna

from search.storage import open_storage


def test_every_connection_writes_ahead_without_an_fsync_per_commit(tmp_path: Path) -> None:
    path = tmp_path / "optuna.db"
    storage = open_storage(f"sqlite:///{path}")
    optuna.create_study(storage=storage, study_name="s")
    with storage.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    assert (mode, synchronous) == ("wal", 1)  # 1 = NORMAL (the default, FULL, is 2)
    with sqlite3.connect(path) as raw:  # a property of the file: any later reader sees it
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_what_a_killed_writer_committed_is_read_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    writer = textwrap.dedent(f"""
        import os, signal, optuna
        from search.storage import open_storage
        study = optuna.create_study(storage=open_storage({url!r}), study_name="s")
        trial = study.ask()
        for key in ("worker", "params", "settings"):
            trial.set_user_attr(key, key * 3)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint of the log
    """)
    done = subprocess.run([sys.executable, "-c", writer], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    assert (tmp_path / "optuna.db-wal").exists()  # the commits live in the log, not yet the file
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert study.trials[0].user_attrs == {"worker": "workerworkerworker",
                                          "params": "paramsparamsparams",
                                          "settings": "settingssettingssettings"}


"""A throwaway PostgreSQL cluster for tests and `make soak`: Debian's initdb + pg_ctl, a fresh
data directory in /tmp, TCP on 127.0.0.1 at a free port, torn down (files and all) at the end.

initdb refuses to run as root, so as root (CI) the cluster belongs to Debian's `postgres`
system user and is started through `runuser`. The superuser has a password (scram-sha-256 over
TCP), so the tests also see that no password leaks into output or MLflow.

Example:
    >>> with throwaway_cluster() as cluster:  # doctest: +SKIP
    ...     url = cluster.create_database("optuna")
    >>> url  # doctest: +SKIP
    'postgresql://fitscope:...@127.0.0.1:41234/optuna'
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "fitscope"


def initdb_path() -> Path | None:
    """Debian's newest installed initdb (/usr/lib/postgresql/<version>/bin), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parents[1].name))
    return Path(found[-1]) if found else None


@dataclass(frozen=True)
class Cluster:
    port: int
    password: str
    root: Path

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database; return its postgresql:// URL (with the password)."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """Start a cluster; stop it and delete its files on exit."""
    initdb = initdb_path()
    if initdb is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = initdb.parent
    root = Path(tempfile.mkdtemp(prefix="fitscope-pg-"))  # /tmp: the postgres user can reach it
    data, password = root / "data", secrets.token_urlsafe(12)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    as_owner: list[str] = []
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam("postgres")  # created by Debian's postgresql package
        for path in (root, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    log = root / "server.log"
    try:
        _run([*as_owner, str(initdb), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
              "--no-instructions"])
        options = " ".join([
            "-c listen_addresses=127.0.0.1", f"-p {port}", f"-k {root}",
            # a throwaway cluster: durability buys nothing, speed does
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=300",
        ])
        _run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
              "-w", "-t", "120", "start"])
        yield Cluster(port, password, root)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m",
                            "immediate", "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}... failed: {result.stderr or result.stdout}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

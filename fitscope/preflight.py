"""Checks run before a study loads data or trains: each names what is wrong in one line.

A study that can only fail after its first trial (the model file cannot be saved, the MLflow
server is down) should fail before that trial, when nothing has been spent yet.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fitscope.errors import OutputError


def writable_dir(path: Path, what: str, create: bool = True) -> Path:
    """Make sure `path` is a directory this process can write into; return it resolved.

    The test writes a temporary file instead of asking `os.access`, which says yes to root even
    on a read-only mount and cannot see ACLs or a full disk.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     writable_dir(Path(tmp) / "runs", "runs dir").name
        'runs'

    Raises:
        OutputError: `path` (or a parent) is a file, is missing with `create=False`, or refuses
            a new file.
    """
    folder = path.expanduser().resolve()
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            raise OutputError(f"{what} {folder} does not exist")
        with tempfile.TemporaryFile(dir=folder, prefix=".fitscope-write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"{what} {folder} is not writable ({reason})") from None
    return folder


def check_study_outputs(tracking: str, runs_dir: Path, reports_dir: Path) -> None:
    """The tracking store is reachable and the runs and reports folders are writable."""
    from tracking.reachability import check_tracking_store

    check_tracking_store(tracking)
    writable_dir(runs_dir, "runs dir (FITSCOPE_RUNS_DIR)")
    writable_dir(reports_dir, "reports dir (FITSCOPE_REPORTS_DIR)")

"""Folders fitscope writes into: checked by writing, so a read-only mount or a full disk is
named before a study spends anything."""

from __future__ import annotations

import tempfile
from pathlib import Path

from common.errors import OutputError


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

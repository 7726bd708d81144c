"""Where data files are looked for: the data dir, the user cache, then OS package dirs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from common.errors import DataError


def cache_dir() -> Path:
    """The user cache: $FITSCOPE_CACHE_DIR, else $XDG_CACHE_HOME/fitscope, else ~/.cache/fitscope.

    Downloads land in `<cache>/<folder>/<file>`, the same layout as a data dir.
    """
    explicit = os.environ.get("FITSCOPE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(base).expanduser() / "fitscope").resolve()


def data_dir_from(data_dir: str | Path | None) -> Path | None:
    """The data dir to search first: the argument (--data-dir), else $FITSCOPE_DATA_DIR, else None.

    Raises:
        DataError: if a data dir is named but is not a directory (most likely a typo).
    """
    raw = data_dir if data_dir is not None else os.environ.get("FITSCOPE_DATA_DIR") or None
    if raw is None:
        return None
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"data dir {path} (--data-dir / FITSCOPE_DATA_DIR) is not a directory")
    return path


def find_in(directory: Path, name: str) -> Path | None:
    """`<directory>/<name>`, else `<directory>/*/<name>` (e.g. tabular/, fashion-mnist/)."""
    direct = directory / name
    if direct.is_file():
        return direct
    if not directory.is_dir():
        return None
    for sub in sorted(directory.iterdir()):
        candidate = sub / name
        if candidate.is_file():
            return candidate
    return None


def search_dirs(data_dir: Path | None, system_dirs: Iterable[Path] = ()) -> list[Path]:
    """The directories searched for a file given by name, in order."""
    dirs = [data_dir] if data_dir is not None else []
    return [*dirs, cache_dir(), *system_dirs]


def locate(name: str, dirs: Iterable[Path]) -> Path | None:
    """The first `name` found in `dirs` (see `find_in`), or None."""
    for directory in dirs:
        found = find_in(directory, name)
        if found is not None:
            return found
    return None

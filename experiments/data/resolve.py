"""Turning a file name, path or URL from a spec into verified bytes.

A name is looked up in the data dir, the package's own copy (small tabular files), the user
cache and OS package dirs, then downloaded from the catalog's URL. Every file the catalog knows
is checked against its sha256 wherever it was found; a spec's own `sha256` is checked the same
way (and takes precedence).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from common.errors import DataError
from experiments.data.catalog import BUNDLED_DIR, KNOWN_FILES
from experiments.data.checksum import read_bytes, read_payload, verify
from experiments.data.download import fetch, require_https
from experiments.data.locations import cache_dir, locate, search_dirs


def resolve_named(
    name: str,
    data_dir: Path | None,
    expected: str | None = None,
    system_dirs: Sequence[Path] = (),
    apt_package: str | None = None,
) -> tuple[Path, bytes]:
    """Find (or download) the file `name` and return its path and verified payload.

    The payload is the decompressed content for catalog files hashed "gunzipped" (IDX .gz).

    Raises:
        DataError: if the file is nowhere and cannot be downloaded, or fails its checksum.
    """
    entry = KNOWN_FILES.get(name)
    expected = expected or (entry.sha256 if entry else None)
    hashed = entry.hashed if entry else "file"
    dirs = _dirs_for(name, data_dir, system_dirs)
    path = locate(name, dirs)
    if path is None:
        if entry is None:
            searched = ", ".join(str(d) for d in dirs)
            raise DataError(
                f"{name}: not found in {searched}; give a path or an https URL in data.path, "
                "or put the file in --data-dir / FITSCOPE_DATA_DIR"
            )
        target = cache_dir() / entry.folder / name
        path = fetch(entry.url, target, expected, hashed, advice=_advice(target, apt_package))
    payload = read_payload(path, hashed)
    verify(payload, expected, path)
    return path, payload


def resolve_csv(spec_path: str, data_dir: Path | None, expected: str | None) -> tuple[Path, bytes]:
    """`data.path` of a csv spec: an https URL, a bare file name, or a path (relative to cwd)."""
    if "://" in spec_path:
        return _resolve_url(spec_path, data_dir, expected)
    if _is_bare_name(spec_path):
        return resolve_named(spec_path, data_dir, expected)
    path = Path(spec_path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: data file not found (data.path)")
    payload = read_bytes(path)
    verify(payload, expected, path)
    return path, payload


def csv_on_disk(spec_path: str, data_dir: Path | None) -> Path | None:
    """The local file `resolve_csv` would read for `spec_path`, without reading or downloading
    anything; None when it is not on disk yet, or for a URL outside the catalog (its download
    is not looked for: the array cache skips those CSVs, which parse in milliseconds)."""
    if "://" in spec_path:
        name = _catalog_name(spec_path)
        return locate(name, _dirs_for(name, data_dir)) if name else None
    if _is_bare_name(spec_path):
        return locate(spec_path, _dirs_for(spec_path, data_dir))
    path = Path(spec_path).expanduser()
    return path if path.is_file() else None


def _dirs_for(name: str, data_dir: Path | None, system_dirs: Sequence[Path] = ()) -> list[Path]:
    """Where `name` is looked for: a user's data dir first (their copy wins, checksum permitting),
    then the copy shipped in the package, then the cache and OS package dirs."""
    dirs = search_dirs(data_dir, system_dirs)
    entry = KNOWN_FILES.get(name)
    if entry is not None and entry.bundled:
        dirs.insert(1 if data_dir is not None else 0, BUNDLED_DIR)
    return dirs


def _catalog_name(url: str) -> str | None:
    """The catalog file served by `url`: a local copy of it will do."""
    return next((name for name, entry in KNOWN_FILES.items() if entry.url == url), None)


def _resolve_url(url: str, data_dir: Path | None, expected: str | None) -> tuple[Path, bytes]:
    require_https(url)
    name = _catalog_name(url)
    if name is not None:
        return resolve_named(name, data_dir, expected)
    name = Path(urlparse(url).path).name or "download"
    # One folder per URL, so two sites' "data.csv" never overwrite each other.
    target = cache_dir() / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if not target.is_file():
        advice = f"save the file as {target} or set data.path to a local copy"
        fetch(url, target, expected, "file", advice=advice)
    payload = read_bytes(target)
    verify(payload, expected, target)
    return target, payload


def _is_bare_name(text: str) -> bool:
    return Path(text).name == text and not text.startswith("~") and text not in (".", "..")


def _advice(target: Path, apt_package: str | None = None) -> str:
    text = (
        f"put {target.name} in a data dir (--data-dir / FITSCOPE_DATA_DIR) "
        f"or in the cache dir {target.parent}"
    )
    return f"{text}, or apt install {apt_package}" if apt_package else text

"""Reading a data file once and proving it is the expected one (sha256)."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path
from typing import Literal

from common.errors import DataError

Hashed = Literal["file", "gunzipped"]


def sha256_hex(data: bytes) -> str:
    """Hex sha256 digest of `data`."""
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes:
    """The file's bytes; an unreadable file is a DataError naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc.strerror or exc}") from None


def gunzip(path: Path) -> bytes:
    """The decompressed content of a .gz file; a truncated or corrupt archive is a DataError."""
    try:
        return gzip.decompress(read_bytes(path))
    except (OSError, EOFError, zlib.error) as exc:
        # gzip raises BadGzipFile (an OSError) for a wrong header, EOFError when truncated.
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc})") from None


def read_payload(path: Path, hashed: Hashed = "file") -> bytes:
    """The bytes a checksum covers: the file itself, or its decompressed content."""
    return gunzip(path) if hashed == "gunzipped" else read_bytes(path)


def verify(data: bytes, expected: str | None, path: Path | str) -> None:
    """Raise a DataError naming `path` unless `data` hashes to `expected` (None: no check).

    Example:
        >>> verify(b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "x")
    """
    if expected is None:
        return
    actual = sha256_hex(data)
    if actual != expected.lower():
        raise DataError(
            f"{path}: checksum mismatch (expected sha256 {expected.lower()}, got {actual}); "
            "the file is corrupt or a different version"
        )

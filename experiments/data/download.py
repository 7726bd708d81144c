"""Downloading a data file into the cache: https only, into a temp file, verified, then renamed.

A failed or mismatching download leaves nothing in the cache, so the next run retries cleanly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from common.errors import DataError
from experiments.data.checksum import Hashed, read_payload, verify

TIMEOUT_S = 60  # per socket operation; a stalled mirror fails instead of hanging a study


def require_https(url: str) -> None:
    """Only https URLs are fetched: plain http would let anyone on the path swap the data."""
    if not url.startswith("https://"):
        raise DataError(f"{url}: only https:// URLs are accepted for data files")


def fetch(url: str, target: Path, expected: str | None, hashed: Hashed, advice: str = "") -> Path:
    """Download `url` to `target` (created only if the checksum matches) and return `target`.

    Args:
        url: An https URL.
        target: Final path in the cache.
        expected: sha256 the payload must have (None: not checked).
        hashed: Whether the checksum covers the file or its gunzipped content.
        advice: Appended to the error when the download fails (where else the file may go).

    Raises:
        DataError: on a non-https URL, a network failure or a checksum mismatch.
    """
    require_https(url)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as exc:
        raise DataError(
            f"{target.parent}: cannot write to the cache dir ({exc.strerror})"
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out)
    except (OSError, ValueError) as exc:
        # URLError, HTTPError, timeouts and TLS errors are all OSErrors.
        tmp.unlink(missing_ok=True)
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        suffix = f"; {advice}" if advice else ""
        raise DataError(f"cannot download {target.name} from {url} ({reason}){suffix}") from None
    return install_download(tmp, target, expected, hashed, source=url)


def install_download(
    tmp: Path, target: Path, expected: str | None, hashed: Hashed, source: str = ""
) -> Path:
    """Verify a downloaded temp file and rename it to `target`; on any failure delete it.

    Raises:
        DataError: if the payload does not hash to `expected` (nothing is left in the cache).
    """
    try:
        verify(read_payload(tmp, hashed), expected, source or target.name)
        os.replace(tmp, target)  # atomic on one filesystem: readers never see a partial file
    finally:
        tmp.unlink(missing_ok=True)
    return target

"""A small reader for the IDX format (MNIST / Fashion-MNIST), in numpy.

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension; the data follows. Images have magic 2051 (3 dims), labels
2049 (1 dim).

Example:
    >>> labels = read_idx("train-labels-idx1-ubyte.gz", IDX_LABELS)  # doctest: +SKIP
    >>> labels.shape  # doctest: +SKIP
    (60000,)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import DataError
from experiments.data.checksum import gunzip

IDX_LABELS = 2049  # unsigned bytes, 1 dimension
IDX_IMAGES = 2051  # unsigned bytes, 3 dimensions


def parse_idx(raw: bytes, magic: int, source: str | Path) -> np.ndarray:
    """Parse decompressed IDX bytes into a uint8 array, checking magic, dims and size.

    Raises:
        DataError: naming `source` if the header is wrong or the data is shorter/longer
            than the header says (a truncated or corrupt file).
    """
    if len(raw) < 4:
        raise DataError(f"{source}: not an IDX file (only {len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{source}: IDX magic number is {found}, expected {magic}")
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{source}: IDX header cut short ({len(raw)} of {header_len} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header_len + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(
            f"{source}: IDX header says {'x'.join(map(str, dims))} "
            f"({expected} bytes) but the file holds {len(raw)} bytes"
        )
    # A view on the bytes (no copy); callers convert to float anyway.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read a gzip-compressed IDX file (no checksum: see `resolve_named` for that)."""
    path = Path(path)
    return parse_idx(gunzip(path), magic, path)

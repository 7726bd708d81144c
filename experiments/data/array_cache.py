"""Preprocessed arrays cached on disk, so new processes (workers, reruns) skip parsing.

An entry is `<cache_dir()>/arrays/<key>/`: one `.npy` per array of the Dataset and a `meta.json`
with the rest. It is loaded back as read-only memory maps, so parallel workers on one machine
share the pages instead of each holding its own copy.

The key covers everything the arrays depend on: the task, the data spec, CACHE_FORMAT, the
source code of this package, the numpy / pandas / scikit-learn versions, and the identity
(resolved path, size, mtime, ctime, inode) of every file the build reads. A changed file, spec
or preprocessing code therefore misses the cache and is built (and checked) from scratch.

Entries are written into a temp dir beside the target and renamed into place, so a reader sees
a whole entry or none; a corrupt entry is discarded and rebuilt. Failing to write is a warning,
never an error. `FITSCOPE_ARRAY_CACHE=0` turns the cache off.

Example:
    >>> from experiments.spec import ExperimentSpec
    >>> spec = ExperimentSpec.model_validate({"name": "xor", "task": "binary",
    ...     "data": {"source": "generated", "dataset": "xor", "split": "none"}})
    >>> cache_key(spec, None) is None  # no source file: built in milliseconds, never cached
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from experiments.data.catalog import IDX_DATASETS
from experiments.data.dataset import Dataset
from experiments.data.locations import cache_dir, locate, search_dirs
from experiments.data.resolve import csv_on_disk
from experiments.spec import DataSpec, ExperimentSpec

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout of an entry changes; old entries are then ignored
ENV_SWITCH = "FITSCOPE_ARRAY_CACHE"  # "0" (or false/no/off) turns the disk cache off
ARRAY_NAMES = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")  # Dataset.arrays()
_META = "meta.json"  # written last; an entry dir without it was damaged after the rename
STALE_S = 3600  # a temp dir this old belongs to a writer that was killed (SIGKILL, power cut)


def enabled() -> bool:
    """Whether the disk cache is on ($FITSCOPE_ARRAY_CACHE is not 0/false/no/off)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def entry_dir(key: str) -> Path:
    """Where the entry for `key` lives."""
    return cache_dir() / "arrays" / key


def cache_key(spec: ExperimentSpec, data_dir: Path | None) -> str | None:
    """The disk cache key of the spec's data, or None when it is not cached.

    None when the cache is off, the source has no file (sklearn, generated, inline), a file is
    not on disk yet (the build downloads it or raises the DataError) or cannot be stat'ed.
    Nothing is read or downloaded: files are only located and stat'ed.

    Args:
        spec: The experiment; `spec.task` and `spec.data` define the data.
        data_dir: The resolved data dir (see `locations.data_dir_from`), or None.
    """
    if not enabled():
        return None
    files = source_files(spec.data, data_dir)
    if files is None:
        return None
    identities = []
    for path in files:
        try:
            real = path.resolve()
            stat = real.stat()
        except OSError:  # vanished or unreadable: let the build report it
            return None
        # ctime and inode cannot be set back by cp -p / tar / rsync -t, unlike mtime
        identities.append([str(real), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
                           stat.st_ino])
    material = {
        "format": CACHE_FORMAT,
        "task": spec.task,
        "data": spec.data.model_dump_json(),
        "code": _code_hash(),
        "libraries": _library_versions(),
        "files": identities,
    }
    text = json.dumps(material, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def source_files(data: DataSpec, data_dir: Path | None) -> list[Path] | None:
    """The files `data` would be built from, found the way resolve.py finds them; None if any
    is missing (a download or a DataError follows) or the source has no file.

    Locates like `resolve.resolve_named` / `resolve.csv_on_disk`, without reading anything;
    tests/experiments/test_array_cache.py checks that both agree on every shipped spec.
    """
    if data.source == "idx":
        info = IDX_DATASETS.get(data.dataset or "")
        if info is None:
            return None
        dirs = search_dirs(data_dir, info.system_dirs)
        names = (info.train_images, info.train_labels, info.test_images, info.test_labels)
        paths = [locate(name, dirs) for name in names]
        return None if None in paths else [path for path in paths if path is not None]
    if data.source == "csv":
        found = csv_on_disk(data.path or "", data_dir)
        return None if found is None else [found]
    # sklearn's bundled iris, generated xor, inline rows: built in milliseconds from data that
    # lives in the spec or an installed package, so an entry per spec would only fill the disk.
    return None


def load(key: str, task: str) -> Dataset | None:
    """The cached Dataset for `key` as read-only memory maps, or None on a miss.

    A corrupt or partial entry (missing file, wrong shape or dtype, unreadable meta.json) is
    discarded and None returned, so the caller rebuilds it.
    """
    target = entry_dir(key)
    try:
        raw = (target / _META).read_text(encoding="utf-8")
    except FileNotFoundError:
        if target.exists():  # a dir without meta.json was damaged: it would block the rewrite
            _discard(target, f"no {_META}")
        return None  # the common miss
    except (OSError, ValueError) as exc:
        _discard(target, f"unreadable {_META} ({exc})")
        return None
    try:
        return _from_entry(target, json.loads(raw), key, task)
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        # np.load: OSError for a missing file, ValueError for a bad header or a file shorter
        # than its header says, EOFError for an empty one; KeyError/TypeError: a malformed meta
        _discard(target, str(exc) or type(exc).__name__)
        return None


def store(key: str, dataset: Dataset) -> None:
    """Write `dataset` as the entry for `key`; an OSError (read-only or full disk) only warns.

    Safe with several processes at once: each writes its own temp dir and renames it into
    place; when another process got there first, its (identical) entry is kept.
    """
    target = entry_dir(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target.parent)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{key}.", suffix=".tmp"))
    except OSError as exc:
        _warn(target, exc)
        return
    try:
        shapes = {}
        for name, array in zip(ARRAY_NAMES, dataset.arrays(), strict=True):
            shapes[name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
            with _durable(tmp / f"{name}.npy") as out:
                np.save(out, array, allow_pickle=False)
        meta = {
            "format": CACHE_FORMAT,
            "key": key,
            "arrays": shapes,
            "feature_names": list(dataset.feature_names),
            "class_names": None if dataset.class_names is None else list(dataset.class_names),
            "n_classes": dataset.n_classes,
            "split_note": dataset.split_note,
        }
        with _durable(tmp / _META) as out:
            out.write(json.dumps(meta).encode())
        try:
            os.replace(tmp, target)  # atomic: readers see the whole entry or none
        except OSError:
            if not (target / _META).is_file():
                raise
            log.debug("array cache %s: another process wrote it first", target)
    except OSError as exc:
        _warn(target, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; a leftover otherwise


def _from_entry(target: Path, meta: Any, key: str, task: str) -> Dataset:
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
        raise ValueError(f"{_META} is for another key or format")
    arrays = []
    for name in ARRAY_NAMES:
        array = np.load(target / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        want = meta["arrays"][name]
        if array.dtype.str != want["dtype"] or list(array.shape) != want["shape"]:
            raise ValueError(f"{name}.npy holds {array.dtype}{array.shape}, {_META} says "
                             f"{want['dtype']}{tuple(want['shape'])}")
        arrays.append(array)
    class_names = meta["class_names"]
    x_train, y_train, x_val, y_val, x_test, y_test = arrays
    dataset = Dataset(
        x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test,
        feature_names=tuple(str(name) for name in meta["feature_names"]),
        class_names=None if class_names is None else tuple(str(name) for name in class_names),
        n_classes=None if meta["n_classes"] is None else int(meta["n_classes"]),
        split_note=str(meta["split_note"]),
    )
    _require_consistent(dataset, task)
    return dataset


def _require_consistent(dataset: Dataset, task: str) -> None:
    """What loader._check guarantees for a fresh build, as a ValueError for a cached one."""
    y_dtype = np.dtype(np.float32 if task == "regression" else np.int64)
    for x, y in zip(dataset.arrays()[::2], dataset.arrays()[1::2], strict=True):
        if (x.ndim != 2 or x.dtype != np.float32 or y.ndim != 1 or y.dtype != y_dtype
                or len(x) == 0 or len(x) != len(y) or x.shape[1] != len(dataset.feature_names)):
            raise ValueError(f"inconsistent arrays: x {x.dtype}{x.shape}, y {y.dtype}{y.shape}, "
                             f"{len(dataset.feature_names)} feature names")


@contextmanager
def _durable(path: Path) -> Iterator[BinaryIO]:
    """A new file, fsynced when the block ends, so a renamed entry survives a crash whole."""
    with open(path, "wb") as out:
        yield out
        out.flush()
        os.fsync(out.fileno())


def _discard(target: Path, why: str) -> None:
    """Move a corrupt entry out of the way (a rename: atomic), then delete it."""
    log.warning("array cache %s is corrupt (%s); rebuilding it", target, why)
    try:
        aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.",
                                      suffix=".bad"))
    except OSError:
        return  # a read-only cache: the rebuilt data stays in memory
    with suppress(OSError):  # already gone: another process discarded it first
        os.replace(target, aside / "entry")
    shutil.rmtree(aside, ignore_errors=True)


def _remove_stale(root: Path) -> None:
    """Delete temp and discarded dirs that killed writers left behind (up to 220 MB each)."""
    now = time.time()
    for path in root.iterdir():
        if path.name.startswith(".") and path.suffix in (".tmp", ".bad"):
            with suppress(OSError):  # another process may be removing it right now
                if now - path.stat().st_mtime > STALE_S:
                    shutil.rmtree(path, ignore_errors=True)


def _warn(target: Path, exc: OSError) -> None:
    log.warning("cannot write the array cache %s (%s); continuing with the data in memory",
                target, exc.strerror or exc)


@lru_cache(maxsize=1)
def _code_hash() -> str:
    """sha256 of this package's source: a change to any loader or preprocessing step
    invalidates every entry."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(f"{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    """Versions of the libraries that split and scale (read from metadata: importing pandas
    and scikit-learn would cost the seconds this cache saves)."""
    versions = {}
    for name in ("numpy", "pandas", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "?"
    return versions

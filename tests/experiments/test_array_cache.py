"""Tests of the on-disk cache of preprocessed arrays, on the real shipped files; no mocks.

"From disk" is told apart from "built" by the arrays' type: a cached entry comes back as
read-only np.memmap, a build as plain ndarrays.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.errors import DataError
from experiments.data import Dataset, array_cache, clear_cache, load_dataset
from experiments.data.catalog import IDX_DATASETS
from experiments.data.locations import cache_dir
from experiments.data.resolve import resolve_csv, resolve_named
from experiments.registry import load_spec, shipped_specs
from experiments.spec import ExperimentSpec
from tests.conftest import REPO, TABULAR
from tests.experiments.test_data import BLOODFAT, BOSTON

DATA_DIR = TABULAR  # a data dir holding the real tabular files

A_DAY_AGO = 86_400


def make_spec(task: str, **data: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate({"name": "test", "task": task, "data": data})


def load(task: str, data_dir: Path = DATA_DIR, **data: Any) -> Dataset:
    return load_dataset(make_spec(task, **data), data_dir)


def entries() -> list[Path]:
    """Finished entries (temp and discarded dirs start with a dot)."""
    root = cache_dir() / "arrays"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def leftovers() -> list[Path]:
    root = cache_dir() / "arrays"
    return sorted(p for p in root.iterdir() if p.name.startswith(".")) if root.exists() else []


def from_disk(data: Dataset) -> bool:
    return all(isinstance(array, np.memmap) for array in data.arrays())


def assert_same(a: Dataset, b: Dataset) -> None:
    assert a.sha256() == b.sha256()
    for x, y in zip(a.arrays(), b.arrays(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert (a.feature_names, a.class_names, a.n_classes, a.split_note) == (
        b.feature_names, b.class_names, b.n_classes, b.split_note)


def copy_aged(source: Path, target: Path) -> Path:
    """A copy whose mtime lies a day back, so a later edit surely changes it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns - A_DAY_AGO * 10**9))
    return target


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A fresh, empty cache dir and a fresh in-process cache for every test."""
    clear_cache()
    cache = tmp_path / "cache"
    monkeypatch.setenv("FITSCOPE_CACHE_DIR", str(cache))
    monkeypatch.delenv(array_cache.ENV_SWITCH, raising=False)
    yield cache
    clear_cache()


# --- hits ------------------------------------------------------------------------------------


def test_fashion_from_disk_in_a_fresh_process_is_identical(
    isolated: Path, fashion_dir: Path
) -> None:
    built = load_dataset(load_spec("fashion"), fashion_dir)
    assert not from_disk(built)
    assert len(entries()) == 1 and leftovers() == []
    code = (
        "import json, numpy as np\n"
        "from experiments.data import load_dataset\n"
        "from experiments.registry import load_spec\n"
        f"d = load_dataset(load_spec('fashion'), {str(fashion_dir)!r})\n"
        "print(json.dumps({'sha': d.sha256(), 'memmap': all(isinstance(a, np.memmap) "
        "for a in d.arrays()), 'writeable': any(a.flags.writeable for a in d.arrays())}))\n"
    )
    env = {**os.environ, "FITSCOPE_CACHE_DIR": str(isolated)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True)
    fresh = json.loads(out.stdout.splitlines()[-1])
    assert fresh == {"sha": built.sha256(), "memmap": True, "writeable": False}
    assert len(entries()) == 1


def test_tabular_from_disk_equals_the_build_and_is_read_only() -> None:
    built = load("regression", **BOSTON)
    clear_cache()
    cached = load("regression", **BOSTON)
    assert from_disk(cached) and not from_disk(built)
    assert_same(cached, built)
    with pytest.raises(ValueError, match="read-only"):
        cached.x_train[0, 0] = 99.0
    clear_cache()
    assert load("regression", **BOSTON).sha256() == built.sha256()  # again, from the same entry
    assert len(entries()) == 1


def test_other_spec_values_are_other_entries() -> None:
    first = load("regression", **BOSTON)
    other = load("regression", **{**BOSTON, "split_seed": 7})
    assert first.sha256() != other.sha256()
    assert len(entries()) == 2


def test_sources_without_a_file_are_not_cached() -> None:
    load("multiclass", source="sklearn", dataset="iris")
    load("binary", source="generated", dataset="xor", split="none")
    load("regression", source="inline", columns=["a", "y"], target="y",
         rows=[[float(i), 2.0 * i] for i in range(10)])
    assert entries() == [] and leftovers() == []


# --- the key follows the source files ---------------------------------------------------------


def test_touching_the_source_file_invalidates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = copy_aged(TABULAR / "x09.txt", data / "tabular" / "x09.txt")
    first = load("regression", data, **BLOODFAT)
    path.touch()
    clear_cache()
    again = load("regression", data, **BLOODFAT)
    assert not from_disk(again)  # rebuilt, and so checked against its sha256 again
    assert_same(first, again)
    assert len(entries()) == 2


def test_edited_source_file_is_rebuilt_with_the_new_values(tmp_path: Path) -> None:
    # a name outside the catalog: no checksum, so only the key can notice the edit
    path = copy_aged(TABULAR / "boston.csv", tmp_path / "data" / "houses.csv")
    spec = {**BOSTON, "path": "houses.csv"}
    first = load("regression", tmp_path / "data", **spec)
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[-1] = str(float(fields[-1]) + 1.0)
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    clear_cache()
    edited = load("regression", tmp_path / "data", **spec)
    assert not from_disk(edited)
    assert edited.sha256() != first.sha256()
    clear_cache()
    assert load("regression", tmp_path / "data", **spec).sha256() == edited.sha256()


def test_corrupted_catalog_file_still_fails_its_checksum_after_a_cached_load(
    tmp_path: Path,
) -> None:
    path = copy_aged(TABULAR / "boston.csv", tmp_path / "data" / "boston.csv")
    load("regression", tmp_path / "data", **BOSTON)
    clear_cache()
    path.write_text(path.read_text().replace("24", "25", 1))
    with pytest.raises(DataError, match=r"boston\.csv: checksum mismatch"):
        load("regression", tmp_path / "data", **BOSTON)


def test_a_file_in_another_data_dir_is_another_entry(tmp_path: Path) -> None:
    copy_aged(TABULAR / "x09.txt", tmp_path / "data" / "x09.txt")
    shared = load("regression", **BLOODFAT)
    copied = load("regression", tmp_path / "data", **BLOODFAT)
    assert_same(shared, copied)
    assert len(entries()) == 2


def test_key_names_the_files_the_build_reads(tmp_path: Path, fashion_dir: Path) -> None:
    """source_files mirrors resolve.py; a drift would key entries on the wrong files."""
    local = copy_aged(TABULAR / "x09.txt", tmp_path / "mine.txt")
    cached = copy_aged(TABULAR / "boston.csv", cache_dir() / "tabular" / "boston.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [(load_spec(name).data, DATA_DIR) for name in sorted(shipped_specs())]
    cases += [
        (make_spec("regression", **{**BLOODFAT, "path": str(local)}).data, None),
        (make_spec("regression", **BOSTON).data, empty),  # the copy the package ships
        (make_spec("regression", **{**BOSTON, "path": "https://raw.githubusercontent.com/"
                                    "DA4BAM/dataset/master/boston.csv"}).data, DATA_DIR),
    ]
    checked = 0
    for data, data_dir in cases:
        keyed = array_cache.source_files(data, data_dir)
        if data.source == "idx":
            info = IDX_DATASETS[str(data.dataset)]
            names = (info.train_images, info.train_labels, info.test_images, info.test_labels)
            read = [resolve_named(n, data_dir, system_dirs=info.system_dirs)[0] for n in names]
        elif data.source == "csv":
            read = [resolve_csv(str(data.path), data_dir, data.sha256)[0]]
        else:
            assert keyed is None
            continue
        assert keyed == read, data
        checked += 1
    assert checked == 7
    assert array_cache.source_files(make_spec("regression", **BOSTON).data, empty) == [
        TABULAR / "boston.csv"]
    titanic = make_spec("binary", source="csv", path="titanic_simple.csv", target="Survived")
    cached = copy_aged(TABULAR / "titanic_simple.csv", cache_dir() / "tabular" / "x.csv")
    unshipped = {**BOSTON, "path": "x.csv"}  # outside the catalog: looked for in the cache
    assert array_cache.source_files(make_spec("regression", **unshipped).data, empty) == [cached]
    assert array_cache.source_files(titanic.data, empty) == [TABULAR / "titanic_simple.csv"]


def test_a_missing_file_is_not_keyed_and_gives_the_usual_error(tmp_path: Path) -> None:
    spec = make_spec("regression", **{**BOSTON, "path": "nowhere.csv"})
    assert array_cache.cache_key(spec, tmp_path) is None
    with pytest.raises(DataError, match=r"nowhere\.csv: not found"):
        load_dataset(spec, tmp_path)
    assert entries() == []


# --- damaged entries, concurrency, failures ----------------------------------------------------


def _truncate(entry: Path) -> None:
    npy = entry / "x_train.npy"
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])


def _empty_npy(entry: Path) -> None:
    (entry / "y_val.npy").write_bytes(b"")


def _drop_npy(entry: Path) -> None:
    (entry / "y_test.npy").unlink()


def _drop_meta(entry: Path) -> None:
    (entry / "meta.json").unlink()


def _garble_meta(entry: Path) -> None:
    (entry / "meta.json").write_text('{"format": 1, "key": ')


def _meta_not_an_object(entry: Path) -> None:
    (entry / "meta.json").write_text("[1, 2]")


def _wrong_shape(entry: Path) -> None:
    np.save(entry / "x_val.npy", np.zeros((3, 12), dtype=np.float32))


def _wrong_dtype_everywhere(entry: Path) -> None:
    """Consistent with meta.json, but not what a regression consumer may receive."""
    meta = json.loads((entry / "meta.json").read_text())
    y = np.load(entry / "y_train.npy").astype(np.int64)
    np.save(entry / "y_train.npy", y)
    meta["arrays"]["y_train"]["dtype"] = y.dtype.str
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [_truncate, _empty_npy, _drop_npy, _drop_meta, _garble_meta,
                                    _meta_not_an_object, _wrong_shape, _wrong_dtype_everywhere])
def test_a_damaged_entry_is_rebuilt(damage: Any, caplog: pytest.LogCaptureFixture) -> None:
    built = load("regression", **BOSTON)
    (entry,) = entries()
    damage(entry)
    clear_cache()
    with caplog.at_level(logging.WARNING, logger=array_cache.__name__):
        again = load("regression", **BOSTON)
    assert not from_disk(again)
    assert_same(again, built)
    assert "corrupt" in caplog.text
    clear_cache()
    repaired = load("regression", **BOSTON)
    assert from_disk(repaired)
    assert_same(repaired, built)
    assert entries() == [entry] and leftovers() == []


def test_several_processes_starting_at_once_write_one_entry(isolated: Path) -> None:
    code = (
        "from experiments.data import load_dataset\n"
        "from experiments.registry import load_spec\n"
        f"print(load_dataset(load_spec('bloodfat'), {str(DATA_DIR)!r}).sha256())\n"
    )
    env = {**os.environ, "FITSCOPE_CACHE_DIR": str(isolated)}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], results
    hashes = {out.strip() for out, _ in results}
    assert hashes == {load_dataset(load_spec("bloodfat"), DATA_DIR).sha256()}
    assert len(entries()) == 1 and leftovers() == []


def test_losing_the_race_keeps_the_first_entry(caplog: pytest.LogCaptureFixture) -> None:
    spec = make_spec("regression", **BLOODFAT)
    data = load_dataset(spec, DATA_DIR)
    key = array_cache.cache_key(spec, DATA_DIR)
    assert key is not None
    (entry,) = entries()
    before = (entry / "meta.json").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger=array_cache.__name__):
        array_cache.store(key, data)  # a second writer with the same arrays
    assert caplog.text == ""
    assert entries() == [entry] and leftovers() == []
    assert (entry / "meta.json").stat().st_mtime_ns == before


def test_temp_dirs_of_killed_writers_are_removed_later() -> None:
    root = cache_dir() / "arrays"
    old, recent = root / ".abc.old.tmp", root / ".abc.recent.tmp"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "x_train.npy").write_bytes(b"partial")
    two_hours_ago = old.stat().st_mtime - 2 * 3600
    os.utime(old, (two_hours_ago, two_hours_ago))
    load("regression", **BOSTON)
    assert leftovers() == [recent]  # a writer may still be busy with a recent one
    assert len(entries()) == 1


def test_array_cache_0_writes_nothing(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(array_cache.ENV_SWITCH, "0")
    load("regression", **BOSTON)
    clear_cache()
    assert not from_disk(load("regression", **BOSTON))
    assert not isolated.exists()


def test_unwritable_cache_dir_warns_and_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # below a regular file: no directory can be made there, even by root
    monkeypatch.setenv("FITSCOPE_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, logger=array_cache.__name__):
        data = load("regression", **BOSTON)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 506
    assert "cannot write the array cache" in caplog.text
    assert "continuing with the data in memory" in caplog.text

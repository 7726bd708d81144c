"""Tests of experiments.data on the real files (the shipped tabular ones, Fashion-MNIST from the
`fashion_dir` fixture) and on tiny files made in tmp_path.

No test contacts the internet: downloads may only go to 127.0.0.1 (an unreachable port),
the user cache is a temporary dir, and Debian's dir is pointed at an empty one.
"""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from common.errors import DataError
from experiments.data import Dataset, clear_cache, load_dataset
from experiments.data.catalog import IDX_DATASETS, KNOWN_FILES
from experiments.data.checksum import sha256_hex
from experiments.data.download import fetch, install_download
from experiments.data.idx import IDX_IMAGES, IDX_LABELS, parse_idx, read_idx
from experiments.spec import ExperimentSpec
from tests.conftest import FASHION_FILES, TABULAR

DATA_DIR = TABULAR  # a data dir holding the real tabular files
UNREACHABLE = "https://127.0.0.1:9"  # discard port on localhost: refused at once, never online

BOSTON = {"source": "csv", "path": "boston.csv", "target": "medv", "scale": "minmax"}
TITANIC = {
    "source": "csv",
    "path": "titanic_simple.csv",
    "target": "Survived",
    "drop": ["PassengerId", "Name"],
    "categorical": ["Sex", "Embarked", "Pclass"],
}
BLOODFAT = {
    "source": "csv",
    "path": "x09.txt",
    "sep": "\\s+",
    "skiprows": 36,
    "columns": ["Index", "One", "Weight", "Age", "BloodFat"],
    "drop": ["Index", "One"],
    "target": "BloodFat",
}
FASHION = {"source": "idx", "dataset": "fashion-mnist", "scale": "divide255"}


def make_spec(task: str, **data: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate({"name": "test", "task": task, "data": data})


def load(task: str, data_dir: Path | str | None = None, **data: Any) -> Dataset:
    return load_dataset(make_spec(task, **data), data_dir)


def write_csv(directory: Path, text: str, name: str = "data.csv") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A fresh cache dir, no env data dir, no Debian dir and no internet for every test."""
    clear_cache()
    cache = tmp_path / "cache"
    monkeypatch.setenv("FITSCOPE_CACHE_DIR", str(cache))
    monkeypatch.delenv("FITSCOPE_DATA_DIR", raising=False)
    fashion = IDX_DATASETS["fashion-mnist"]
    monkeypatch.setitem(
        IDX_DATASETS, "fashion-mnist",
        dataclasses.replace(fashion, system_dirs=(tmp_path / "no-debian",)),
    )
    real_urlopen = urllib.request.urlopen

    def local_only(url: Any, *args: Any, **kwargs: Any) -> Any:
        host = urlparse(url if isinstance(url, str) else url.full_url).hostname
        assert host == "127.0.0.1", f"a test tried to download {url}"
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    yield cache
    clear_cache()


@pytest.fixture(scope="module")
def fashion(fashion_dir: Path) -> Dataset:
    return load("multiclass", fashion_dir, **FASHION)


# --- the real data sets -------------------------------------------------------------------


def test_fashion_split_shapes_and_pixel_range(fashion: Dataset) -> None:
    assert fashion.x_train.shape == (48000, 784)
    assert fashion.x_val.shape == (12000, 784)
    assert fashion.x_test.shape == (10000, 784)
    assert fashion.y_train.shape == (48000,) and fashion.y_test.shape == (10000,)
    assert fashion.n_features == 784 and fashion.feature_names[:2] == ("px0", "px1")
    assert fashion.x_train.dtype == np.float32 and fashion.y_train.dtype == np.int64
    for x in (fashion.x_train, fashion.x_val, fashion.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    assert fashion.n_classes == 10
    assert fashion.class_names is not None and fashion.class_names[0] == "T-shirt/top"
    assert fashion.class_names[9] == "Ankle boot"
    assert "48000/12000" in fashion.split_note and "10000 test" in fashion.split_note


def test_fashion_val_split_is_stratified(fashion: Dataset) -> None:
    assert np.bincount(fashion.y_val, minlength=10).tolist() == [1200] * 10
    assert np.bincount(fashion.y_test, minlength=10).tolist() == [1000] * 10


def test_idx_reader_counts_6000_train_labels_per_class(fashion_dir: Path) -> None:
    labels = read_idx(fashion_dir / "train-labels-idx1-ubyte.gz", IDX_LABELS)
    assert labels.shape == (60000,)
    assert np.bincount(labels).tolist() == [6000] * 10


@pytest.mark.parametrize("name", ["boston.csv", "titanic_simple.csv", "x09.txt"])
def test_small_tables_ship_with_the_package_and_match_the_catalog(name: str) -> None:
    entry = KNOWN_FILES[name]
    assert entry.bundled and entry.source and entry.licence
    assert sha256_hex((TABULAR / name).read_bytes()) == entry.sha256


def test_shipped_copy_is_used_offline_with_no_data_dir(isolated: Path) -> None:
    # no data dir, an empty cache, and `isolated` turns any download into a failure
    data = load("binary", None, **TITANIC)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 891
    assert files_under(isolated / "tabular") == []  # nothing downloaded or copied


def test_boston_rows_and_features() -> None:
    data = load("regression", **BOSTON)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 506
    # 13 columns in the file: 12 features and the target medv.
    assert data.n_features == 12 and "medv" not in data.feature_names
    assert data.class_names is None and data.n_classes is None
    assert data.y_train.dtype == np.float32 and data.x_train.dtype == np.float32


def test_minmax_scaler_is_fitted_on_train_only() -> None:
    data = load("regression", **BOSTON)
    assert data.x_train.min(axis=0).tolist() == [0.0] * 12
    assert data.x_train.max(axis=0).tolist() == [1.0] * 12
    held_out = np.vstack([data.x_val, data.x_test])
    # Fitted on all rows, no held-out value could leave [0, 1].
    assert held_out.min() < 0.0 or held_out.max() > 1.0


def test_titanic_is_imputed_and_one_hot_encoded() -> None:
    data = load("binary", **TITANIC)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 891
    for x in (data.x_train, data.x_val, data.x_test):
        assert not np.isnan(x).any()
    for name in ("Age", "Fare", "Sex_male", "Sex_female", "Pclass_1", "Pclass_3",
                 "Embarked_Southampton"):
        assert name in data.feature_names
    assert not {"PassengerId", "Name", "Survived", "Sex"} & set(data.feature_names)
    assert data.n_classes == 2 and data.class_names == ("0", "1")
    assert set(np.unique(data.y_train)) == {0, 1}
    sex = data.x_train[:, data.feature_names.index("Sex_male")]
    assert set(np.unique(sex)) == {0.0, 1.0}


def test_bloodfat_whitespace_file_with_comment_lines() -> None:
    data = load("regression", **BLOODFAT)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 25
    assert data.feature_names == ("Weight", "Age")


def test_iris_three_classes_stratified() -> None:
    data = load("multiclass", source="sklearn", dataset="iris")
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 150
    assert data.n_features == 4 and data.n_classes == 3
    assert data.class_names == ("setosa", "versicolor", "virginica")
    for y in (data.y_train, data.y_val, data.y_test):
        assert set(np.unique(y)) == {0, 1, 2}


def test_xor_uses_all_four_rows_everywhere() -> None:
    data = load("binary", source="generated", dataset="xor", split="none", scale="none")
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val),
                 (data.x_test, data.y_test)):
        assert x.shape == (4, 2)
        assert y.tolist() == (x[:, 0].astype(int) ^ x[:, 1].astype(int)).tolist()
    assert "train = val = test" in data.split_note


def test_inline_rows() -> None:
    data = load(
        "regression", source="inline", columns=["a", "b"], target="b", scale="none",
        rows=[[float(i), 2.0 * i] for i in range(10)],
    )
    assert data.feature_names == ("a",)
    np.testing.assert_array_equal(data.y_train, 2 * data.x_train[:, 0])


# --- caching and fingerprints ---------------------------------------------------------------


def test_second_call_returns_the_cached_object() -> None:
    spec = make_spec("multiclass", source="sklearn", dataset="iris")
    first = load_dataset(spec, DATA_DIR)
    assert load_dataset(spec, str(DATA_DIR)) is first
    assert load_dataset(spec, DATA_DIR / ".." / DATA_DIR.name) is first
    clear_cache()
    assert load_dataset(spec, DATA_DIR) is not first


def test_cached_arrays_are_read_only() -> None:
    data = load("multiclass", source="sklearn", dataset="iris")
    with pytest.raises(ValueError, match="read-only"):
        data.x_train[0, 0] = 99.0


def test_sha256_fingerprints_the_arrays() -> None:
    spec = make_spec("multiclass", source="sklearn", dataset="iris")
    first = load_dataset(spec, DATA_DIR)
    clear_cache()
    again = load_dataset(spec, DATA_DIR)
    other = load("multiclass", source="sklearn", dataset="iris", split_seed=7)
    assert len(first.sha256()) == 64
    assert first.sha256() == again.sha256()
    assert other.sha256() != first.sha256()


# --- file resolution and checksums -----------------------------------------------------------


def test_modified_file_in_data_dir_fails_its_checksum(tmp_path: Path, isolated: Path) -> None:
    tabular = tmp_path / "data" / "tabular"
    tabular.mkdir(parents=True)
    text = (TABULAR / "boston.csv").read_text(encoding="utf-8")
    write_csv(tabular, text.replace("24", "25", 1), "boston.csv")
    with pytest.raises(DataError, match=r"boston\.csv: checksum mismatch") as err:
        load("regression", tmp_path / "data", **BOSTON)
    assert KNOWN_FILES["boston.csv"].sha256 in str(err.value)
    assert files_under(isolated) == []


def test_install_download_deletes_a_mismatching_temp_file(isolated: Path) -> None:
    folder = isolated / "tabular"
    folder.mkdir(parents=True)
    tmp = folder / ".boston.csv.part"
    tmp.write_bytes(b"not boston\n")
    with pytest.raises(DataError, match="checksum mismatch"):
        install_download(tmp, folder / "boston.csv", KNOWN_FILES["boston.csv"].sha256, "file")
    assert files_under(isolated) == []


def test_install_download_moves_a_verified_file(isolated: Path) -> None:
    isolated.mkdir()
    tmp = isolated / ".x.part"
    tmp.write_bytes(b"payload")
    target = install_download(tmp, isolated / "x", sha256_hex(b"payload"), "file")
    assert target.read_bytes() == b"payload"
    assert files_under(isolated) == [target]


def test_gz_checksum_covers_the_decompressed_bytes(isolated: Path) -> None:
    """Debian's gz headers differ from the official ones; the content must still match."""
    isolated.mkdir()
    content = b"same content"
    tmp = isolated / ".a.gz.part"
    tmp.write_bytes(gzip.compress(content, mtime=0))
    assert gzip.compress(content, mtime=0) != gzip.compress(content, mtime=1)
    install_download(tmp, isolated / "a.gz", sha256_hex(content), "gunzipped")
    assert (isolated / "a.gz").is_file()


def test_file_in_user_cache_is_used(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = KNOWN_FILES["boston.csv"]
    monkeypatch.setitem(KNOWN_FILES, "boston.csv", dataclasses.replace(entry, bundled=False))
    (isolated / "tabular").mkdir(parents=True)
    shutil.copy(TABULAR / "boston.csv", isolated / "tabular" / "boston.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    data = load("regression", empty, **BOSTON)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 506


def test_env_data_dir_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FITSCOPE_DATA_DIR", str(DATA_DIR))
    data = load("regression", None, **BLOODFAT)
    assert data.feature_names == ("Weight", "Age")


def test_data_dir_that_is_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="FITSCOPE_DATA_DIR"):
        load("regression", tmp_path / "typo", **BOSTON)


def test_spec_sha256_is_checked(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "a,y\n1,2\n2,4\n3,6\n4,8\n5,10\n6,12\n7,14\n8,16\n")
    good = sha256_hex(path.read_bytes())
    data = load("regression", None, source="csv", path=str(path), target="y", sha256=good)
    assert data.feature_names == ("a",)
    wrong = "0" * 64
    with pytest.raises(DataError, match=rf"data\.csv: checksum mismatch.*{wrong}.*{good}"):
        load("regression", None, source="csv", path=str(path), target="y", sha256=wrong)


def test_offline_without_any_copy_names_the_options(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = KNOWN_FILES["boston.csv"]
    unshipped = dataclasses.replace(entry, url=f"{UNREACHABLE}/boston.csv", bundled=False)
    monkeypatch.setitem(KNOWN_FILES, "boston.csv", unshipped)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="FITSCOPE_DATA_DIR") as err:
        load("regression", empty, **BOSTON)
    assert str(isolated / "tabular") in str(err.value)
    assert "\n" not in str(err.value)
    assert files_under(isolated) == []


def test_offline_fashion_suggests_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in FASHION_FILES:
        entry = KNOWN_FILES[name]
        monkeypatch.setitem(KNOWN_FILES, name, dataclasses.replace(entry, url=f"{UNREACHABLE}/x"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="apt install dataset-fashion-mnist") as err:
        load("multiclass", empty, **FASHION)
    assert "FITSCOPE_DATA_DIR" in str(err.value)


def test_unreachable_url_in_spec(isolated: Path) -> None:
    with pytest.raises(DataError, match=r"cannot download x\.csv .*set data\.path to a local"):
        load("regression", None, source="csv", path=f"{UNREACHABLE}/x.csv", target="y")
    assert files_under(isolated) == []


def test_plain_http_is_refused(isolated: Path) -> None:
    with pytest.raises(DataError, match="only https://"):
        fetch("http://127.0.0.1:9/x.csv", isolated / "x.csv", None, "file")


# --- corrupt IDX files ----------------------------------------------------------------------


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


def test_truncated_idx_gz_names_the_file(tmp_path: Path) -> None:
    whole = gzip.compress(idx_bytes(IDX_LABELS, (100,), bytes(range(100))))
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"labels-idx1-ubyte\.gz: corrupt or truncated"):
        read_idx(path, IDX_LABELS)


def test_truncated_fashion_file_in_data_dir_names_it(tmp_path: Path, fashion_dir: Path) -> None:
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in FASHION_FILES[:3]:
        (folder / name).symlink_to(fashion_dir / name)
    whole = (fashion_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(whole[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        load("multiclass", tmp_path / "data", **FASHION)


def test_idx_size_must_match_the_header() -> None:
    raw = idx_bytes(IDX_IMAGES, (2, 28, 28), bytes(28 * 28))  # one image short
    with pytest.raises(DataError, match=r"f\.gz: IDX header says 2x28x28"):
        parse_idx(raw, IDX_IMAGES, "f.gz")
    assert parse_idx(raw + bytes(28 * 28), IDX_IMAGES, "f.gz").shape == (2, 28, 28)


def test_idx_magic_is_checked() -> None:
    raw = idx_bytes(IDX_LABELS, (3,), bytes(3))
    with pytest.raises(DataError, match="magic number is 2049, expected 2051"):
        parse_idx(raw, IDX_IMAGES, "f.gz")


# --- malformed tables -----------------------------------------------------------------------

REGRESSION_CSV = "a,b,y\n" + "".join(f"{i},{i % 3},{i * 1.5}\n" for i in range(20))


def test_missing_target_column_lists_the_available_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path, REGRESSION_CSV)
    with pytest.raises(DataError, match=r"data\.csv: target column 'nope' not found; "
                                         r"available: a, b, y"):
        load("regression", None, source="csv", path=str(path), target="nope")


@pytest.mark.parametrize("field", ["drop", "categorical"])
def test_missing_drop_or_categorical_column(tmp_path: Path, field: str) -> None:
    path = write_csv(tmp_path, REGRESSION_CSV)
    with pytest.raises(DataError, match=rf"data\.csv: data\.{field} column 'zz' not found"):
        load("regression", None, source="csv", path=str(path), target="y", **{field: ["zz"]})


def test_text_in_a_numeric_column_names_column_and_value(tmp_path: Path) -> None:
    path = write_csv(tmp_path, REGRESSION_CSV.replace("\n7,1,", "\n7,oops,"))
    with pytest.raises(DataError, match=r"data\.csv: column 'b' must be numeric .*'oops'"):
        load("regression", None, source="csv", path=str(path), target="y")


def test_text_column_declared_categorical_is_fine(tmp_path: Path) -> None:
    path = write_csv(tmp_path, REGRESSION_CSV.replace("\n7,1,", "\n7,oops,"))
    data = load("regression", None, source="csv", path=str(path), target="y",
                categorical=["b"])
    assert {"b_0", "b_1", "b_2"} <= set(data.feature_names)


@pytest.mark.parametrize("text", ["", "a,y\n"], ids=["empty", "header-only"])
def test_empty_csv(tmp_path: Path, text: str) -> None:
    path = write_csv(tmp_path, text, "empty.csv")
    with pytest.raises(DataError, match=r"empty\.csv: (empty file|no data rows)"):
        load("regression", None, source="csv", path=str(path), target="y")


def test_single_class_target(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "a,y\n" + "".join(f"{i},1\n" for i in range(10)))
    with pytest.raises(DataError, match=r"data\.csv: target column 'y' has a single class"):
        load("binary", None, source="csv", path=str(path), target="y")


def test_binary_task_needs_two_classes() -> None:
    with pytest.raises(DataError, match="iris: target column 'species' has 3 classes"):
        load("binary", source="sklearn", dataset="iris")


def test_regression_target_must_be_numeric(tmp_path: Path) -> None:
    path = write_csv(tmp_path, REGRESSION_CSV.replace("\n7,1,10.5", "\n7,1,big"))
    with pytest.raises(DataError, match=r"data\.csv: regression target 'y' .*'big'"):
        load("regression", None, source="csv", path=str(path), target="y")


def test_class_too_rare_to_stratify(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "a,y\n" + "".join(f"{i},{int(i == 0)}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"test split of .*data\.csv"):
        load("binary", None, source="csv", path=str(path), target="y")


def test_columns_must_match_the_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "1 2 3\n4 5 6\n", "x.txt")
    with pytest.raises(DataError, match=r"x\.txt: data\.columns names 2 columns .* has 3"):
        load("regression", None, source="csv", path=str(path), sep="\\s+", columns=["a", "y"],
             target="y")


def test_unknown_named_file_says_where_it_looked(tmp_path: Path, isolated: Path) -> None:
    with pytest.raises(DataError, match=r"mine\.csv: not found in .*cache"):
        load("regression", None, source="csv", path="mine.csv", target="y")


def test_data_package_imports_no_training_or_tracking_library() -> None:
    code = (
        "import sys\n"
        "from experiments.data import load_dataset\n"
        "from experiments.spec import ExperimentSpec\n"
        "spec = ExperimentSpec.model_validate({'name': 'x', 'task': 'binary', 'data': "
        "{'source': 'generated', 'dataset': 'xor', 'split': 'none'}})\n"
        "load_dataset(spec)\n"
        "print(sorted({'optuna', 'mlflow', 'keras', 'tensorflow'} & set(sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"

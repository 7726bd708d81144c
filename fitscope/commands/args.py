"""Argument types and options shared by several commands (one clear line on bad values)."""

from __future__ import annotations

import argparse
import re
from typing import Any

# what default names (`iris-s42-1a2b3c4d`, `...-kt-hyperband`) and `compare` names use; a study
# name becomes a folder under runs/ and reports/, so no "/", no leading "." and a bounded length
STUDY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text}")
    return value


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def study_name(text: str) -> str:
    """A --study value: letters, digits, ".", "_" and "-" (it names folders and MLflow runs).

    Example:
        >>> study_name("iris-s42-1a2b3c4d")
        'iris-s42-1a2b3c4d'
    """
    if not re.fullmatch(STUDY_NAME_PATTERN, text):
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise argparse.ArgumentTypeError(
            f"expected a study name matching {STUDY_NAME_PATTERN}, got {shown!r}")
    return text


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """--study, --storage, --tracking-uri, --data-dir: where a study and its runs live."""
    parser.add_argument("--study", type=study_name,
                        help="study name (default: derived from experiment and spec)")
    add_options(parser, "storage", "tracking", "data")


def add_options(parser: argparse.ArgumentParser, *names: str) -> None:
    """The shared options by name: "storage", "tracking", "data", "verbose"."""
    for name in names:
        flag, kwargs = _OPTIONS[name]
        parser.add_argument(flag, **kwargs)


_OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "storage": ("--storage", {"help": "Optuna storage URL (default: FITSCOPE_STORAGE or sqlite "
                              "beside mlflow.db)"}),
    "tracking": ("--tracking-uri", {"help": "MLflow tracking URI (default: MLFLOW_TRACKING_URI "
                                    "or sqlite:///mlflow.db)"}),
    "data": ("--data-dir", {"help": "directory holding data files (FITSCOPE_DATA_DIR)"}),
    "verbose": ("--verbose", {"action": "store_true", "help": "show Keras' per-epoch output"}),
}

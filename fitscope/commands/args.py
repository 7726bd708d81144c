"""Argument types and options shared by several commands (one clear line on bad values)."""

from __future__ import annotations

import argparse
from typing import Any


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


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """--study, --storage, --tracking-uri, --data-dir: where a study and its runs live."""
    parser.add_argument("--study", help="study name (default: derived from experiment and spec)")
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

"""Argument types and options shared by several commands (one clear line on bad values)."""

from __future__ import annotations

import argparse


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
    parser.add_argument("--storage", help="Optuna storage URL (default: FITSCOPE_STORAGE or "
                        "sqlite beside mlflow.db)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI "
                        "or sqlite:///mlflow.db)")
    parser.add_argument("--data-dir", help="directory holding data files (FITSCOPE_DATA_DIR)")

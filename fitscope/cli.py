"""`fitscope` command line: parses arguments and hands them to fitscope.commands (no logic here).

Heavy libraries (TensorFlow, MLflow) are imported by the commands that need them, so `--help`,
`list` and `show` answer instantly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fitscope",
        description="Hyperparameter search for dense Keras networks, tracked in MLflow.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    search = sub.add_parser("search", help="run or resume an Optuna study on an experiment")
    search.add_argument("experiment", help="a shipped experiment name (see `list`) or a spec path")
    search.add_argument("--trials", type=_positive_int, help="trials this invocation adds")
    search.add_argument("--timeout", type=_positive_float, help="stop starting trials after S s")
    search.add_argument("--seed", type=_int, help="study seed (sampler and per-trial seeds)")
    search.add_argument("--study", help="study name (default: derived from experiment and spec)")
    search.add_argument("--storage", help="Optuna storage URL (default: sqlite beside mlflow.db)")
    search.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI "
                        "or sqlite:///mlflow.db)")
    search.add_argument("--data-dir", help="directory holding data files (FITSCOPE_DATA_DIR)")
    search.add_argument("--verbose", action="store_true", help="show Keras' per-epoch output")

    sub.add_parser("list", help="the experiments that ship, one line each")
    show = sub.add_parser("show", help="print an experiment's resolved spec")
    show.add_argument("experiment")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up chatter (CUDA probes, graph attribute notes) is noise here
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if getattr(args, "verbose", False) else "3")
    from fitscope import commands
    from fitscope.errors import FitscopeError

    handler = {"search": commands.search, "list": commands.list_experiments, "show": commands.show}
    try:
        return handler[args.command](args)
    except FitscopeError as exc:
        if args.debug:
            raise
        print(f"fitscope: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

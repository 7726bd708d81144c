"""`fitscope` command line: parses arguments and hands them to a command module (no logic here).

Heavy libraries (TensorFlow, MLflow) are imported by the commands that need them, so `--help`,
`list` and `show` answer instantly.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

from common.errors import FitscopeError
from common.masking import mask_text
from fitscope import settings
from fitscope.commands import COMMAND_MODULES


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints its whole usage block above an error; fitscope says what is wrong in one
    line, like every other error it reports (`--help` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"fitscope: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    # subparsers inherit the parser class, so every command's errors are one line too
    parser = OneLineErrorParser(
        prog="fitscope",
        description="Hyperparameter search for dense Keras networks, tracked in MLflow.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"fitscope.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one fitscope command in this process and return its exit code.

    The commands set SIGINT and SIGTERM handlers for the process they end: `search` ignores
    both once an interrupted study has closed its runs, so that another Ctrl-C on the way out
    prints no traceback; `worker` turns SIGTERM into an interruption. Called in-process (a test,
    a notebook), the caller gets its own handlers back: a pytest process left ignoring SIGINT
    handed that to every process it started after, whose Ctrl-C then did nothing. The console
    script (`run`) keeps them, as its process is ending.
    """
    with _signal_handlers_restored():
        return _main(argv)


def run() -> NoReturn:
    """The `fitscope` console script and `python -m fitscope`."""
    sys.exit(_main())


@contextlib.contextmanager
def _signal_handlers_restored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can set handlers, so no command here changed them
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:  # None: set outside Python, which Python cannot restore
                signal.signal(sig, handler)


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up chatter (CUDA probes, graph attribute notes) is noise here
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if getattr(args, "verbose", False) else "3")

    try:
        if getattr(args, "loads_keras", False):
            # a backend Keras cannot load fails here in one line, not inside Keras's first
            # import; commands that train or load no model work whatever it names
            settings.requested_backend()
        return int(args.handler(args))
    except FitscopeError as exc:
        if args.debug:
            raise
        print(f"fitscope: error: {mask_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a study (loading data, syncing): no traceback
        if args.debug:
            raise
        print("fitscope: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    run()

"""`fitscope dashboard`: optuna-dashboard over the Optuna storage `search` writes, on this machine
only unless told otherwise.

The storage URL is the one `fitscope search` computes (beside mlflow.db by default), so the
dashboard shows exactly the studies `make search` ran, live while they run. Like the MLflow UI it
has no authentication, hence 127.0.0.1 by default.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

from common.errors import FitscopeError, TrackingError
from common.masking import mask_url
from fitscope import settings as defaults
from fitscope.commands.ui import is_loopback, port_number, require_free_port
from search.storage import open_storage

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # optuna-dashboard's own default; the MLflow UI keeps 5000


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "dashboard", help="optuna-dashboard on http://127.0.0.1:8080 over fitscope's Optuna storage"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default "
                        "127.0.0.1; anything else is open to the network, without authentication)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--storage", help="Optuna storage URL (default: FITSCOPE_STORAGE or "
                        "sqlite beside mlflow.db)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI whose folder holds optuna.db "
                        "(default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    parser.set_defaults(handler=dashboard)


def dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard until Ctrl-C."""
    url = defaults.storage_url(args.storage, defaults.tracking_uri(args.tracking_uri))
    if defaults.missing_sqlite_file(url):
        raise TrackingError(f"no Optuna storage at {mask_url(url)}: run `fitscope search` first, "
                            "or pass --storage")
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise FitscopeError("optuna-dashboard is not installed: pip install "
                            "'fitscope[dashboard]' (make install does)") from None
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage(url)  # journal files and PostgreSQL too, as `search` opens them
    if not is_loopback(args.host):
        print(f"fitscope: warning: optuna-dashboard on {args.host}:{args.port} can be reached "
              "from other machines and has no authentication", file=sys.stderr)
    require_free_port(args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"optuna-dashboard on http://{shown}:{args.port} over {mask_url(url)}; Ctrl-C stops it",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
        run_server(storage, host=args.host, port=args.port)
    return 0

"""`fitscope ui`: MLflow's UI over the tracking store `search` writes, on this machine only
unless told otherwise.

MLflow's server has no authentication unless its auth app is enabled, so it binds to 127.0.0.1
by default; `--host` elsewhere is an explicit choice and comes with a warning. To look from
another machine without exposing it, forward the port: `ssh -L 5000:127.0.0.1:5000 host`.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import sys

from common.errors import FitscopeError, TrackingError
from common.masking import mask_url
from fitscope import settings as defaults
from fitscope.commands.args import add_options
from tracking.reachability import check_tracking_store

DEFAULT_HOST = "127.0.0.1"
NO_AUTH_WARNING = (
    "fitscope: warning: MLflow on {host}:{port} can be reached from other machines, and MLflow's "
    "UI has no authentication unless its auth app is enabled (mlflow server --app-name "
    "basic-auth): anyone who reaches this port can read, change and delete every run"
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ui", help="MLflow UI on http://127.0.0.1:5000 over fitscope's store")
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default "
                        "127.0.0.1: this machine only; anything else is open to the network, "
                        "without authentication)")
    parser.add_argument("--port", type=port_number, default=5000, help="port (default 5000)")
    add_options(parser, "tracking")
    parser.set_defaults(handler=ui)


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {value}")
    return value


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def require_free_port(host: str, port: int) -> None:
    """Fail in one line when `host:port` is taken: the server would only log it and end (MLflow's
    exits 0, as if it had served and stopped). Bound here a moment before the server binds it.

    Raises:
        FitscopeError: the port is in use, or `host` is no address of this machine.
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise FitscopeError(f"cannot listen on {host}:{port}: in use; choose another "
                                    "--port") from None
            raise FitscopeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check "
                                "--host") from None


def server_command(host: str, port: int) -> list[str]:
    """The `mlflow server` command line (the same interpreter's MLflow); the store it serves
    goes in its environment (`server_env`), never here, where `ps` shows a password to anyone.

    Example:
        >>> " ".join(server_command("127.0.0.1", 5000)[2:6])
        'mlflow server --host 127.0.0.1'
    """
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", host, "--port", str(port),
        "--workers", "1",  # one viewer on a shared machine; MLflow's default starts 4 processes
    ]


def server_env(tracking: str) -> dict[str, str]:
    """The environment of `mlflow server`: the store it serves, and MLflow 3's GenAI job runner
    off unless the user turned it on (it starts eight more processes importing MLflow beside the
    UI, for jobs that fitscope's runs never use)."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ,
            "MLFLOW_BACKEND_STORE_URI": tracking}


def ui(args: argparse.Namespace) -> int:
    """Replace this process by MLflow's server (so Ctrl-C and exit codes are MLflow's own)."""
    tracking = defaults.tracking_uri(args.tracking_uri)
    if tracking.startswith(("http://", "https://")):
        raise TrackingError(f"{mask_url(tracking)} is a tracking server already: open it in a "
                            "browser, or give --tracking-uri the store it serves")
    check_tracking_store(tracking)
    if not is_loopback(args.host):
        print(NO_AUTH_WARNING.format(host=args.host, port=args.port), file=sys.stderr)
    require_free_port(args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"MLflow UI on http://{shown}:{args.port} over {mask_url(tracking)}; Ctrl-C stops it",
          flush=True)
    sys.stderr.flush()
    command = server_command(args.host, args.port)
    os.execve(command[0], command, server_env(tracking))
    return 0  # not reached: execve does not return

"""`fitscope list` and `fitscope show EXP`: the shipped experiments and resolved specs."""

from __future__ import annotations

import argparse

from experiments.registry import list_experiments as shipped
from experiments.registry import load_spec


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("list", help="the experiments that ship, one line each").set_defaults(
        handler=list_experiments
    )
    show_parser = sub.add_parser("show", help="print an experiment's resolved spec")
    show_parser.add_argument("experiment", help="a shipped experiment name or a spec path")
    show_parser.set_defaults(handler=show)


def list_experiments(args: argparse.Namespace) -> int:

    for name, description in shipped():
        print(f"{name:<10} {description}")
    return 0


def show(args: argparse.Namespace) -> int:
    import yaml

    spec = load_spec(args.experiment)
    print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), end="")
    return 0

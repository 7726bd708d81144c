"""`fitscope predict EXP --input FILE`: the experiment's winner on new raw data.

CSV in (the original file's columns, target optional), CSV out: the predicted class name and
one probability per class, or the value for regression; .npy or IDX images for fashion. A file
that does not fit the model exits 2 with one line naming the column or the shape.
"""

from __future__ import annotations

import argparse
import sys

from common.errors import OutputError
from fitscope import settings as defaults
from fitscope.commands.args import add_options
from fitscope.predict import predict_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "predict", help="predict new raw rows or images with an experiment's best model",
        description="Load the experiment's registered best model (models:/EXP@best, moved to "
        "every study's best trial) and predict the rows of a CSV (columns as in the original "
        "file) or the images of a .npy or IDX file. Writes CSV: prediction and prob_<class> "
        "per class (classification) or prediction (regression).",
    )
    parser.add_argument("experiment", help="experiment name (the registered model's name)")
    parser.add_argument("--input", required=True, metavar="FILE",
                        help="CSV of raw rows, or .npy / IDX images for image experiments")
    parser.add_argument("--output", metavar="FILE", help="CSV to write (default: stdout)")
    parser.add_argument("--model", metavar="URI", help="model URI instead of models:/EXP@best "
                        "(models:/EXP/3, runs:/<parent run>/best_model, ...)")
    add_options(parser, "tracking")
    parser.set_defaults(handler=predict, loads_keras=True)


def predict(args: argparse.Namespace) -> int:
    tracking = defaults.tracking_uri(args.tracking_uri)
    result = predict_file(tracking, args.experiment, args.input, args.model)
    if args.output:
        try:
            result.frame.to_csv(args.output, index=False)
        except OSError as exc:
            raise OutputError(f"{args.output}: cannot write the predictions: "
                              f"{exc.strerror or exc}") from None
        print(f"fitscope predict: {result.rows} predictions from {result.model_uri} written to "
              f"{args.output}", file=sys.stderr)
    else:
        result.frame.to_csv(sys.stdout, index=False)
    return 0

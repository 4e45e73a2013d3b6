"""`python -m app data|train|predict ...`: the entry point inside the container.

Parses the command line and hands over: training to app/train/session.py (exit statuses
in app/train/exits.py), the bundled dataset to app/train/digits.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.settings import DATA_MOUNT, OUTPUTS_MOUNT
from app.train.exits import EXIT_OK, EXIT_USAGE
from app.train.explore import default_dir


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise SystemExit(fail(f"{self.prog}: {message}"))


def fail(message: str) -> int:
    print(f"trainbox: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m app", description="trainbox: reproducible TensorFlow training")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    data = commands.add_parser("data", help="write the bundled digits dataset as PNG class folders")
    data.add_argument("data_dir", nargs="?", help=f"data directory (default {DATA_MOUNT} or ./data)")
    train = commands.add_parser("train", help="train one run; writes <output>/<run id>/")
    train.add_argument("--config", help="YAML config file (defaults apply when omitted)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key by its dotted path, e.g. training.epochs=3",
    )
    train.add_argument("--run-id", help="name of the run directory (default: a new timestamped id)")
    train.add_argument(
        "--resume", metavar="RUN_ID", help="continue an interrupted run from its last checkpoint"
    )
    train.add_argument("--data-dir", help=f"data directory (default {DATA_MOUNT} if it exists, else ./data)")
    train.add_argument(
        "--output-dir", help=f"output directory (default {OUTPUTS_MOUNT} if it exists, else ./outputs)"
    )
    train.add_argument(
        "--cache-dir", help="where decoded images are kept for later runs (default <output dir>/.cache)"
    )
    plot = commands.add_parser("sweep-plot", help="draw a sweep's metric against its swept keys (PNG)")
    plot.add_argument("sweep_dir", help="the sweep's folder, holding results.json")
    predict = commands.add_parser("predict", help="classify image files or folders with a run's model")
    predict.add_argument("run_dir", help="the run directory (holding model.keras)")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of them")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    return parser


def command_sweep_plot(args: argparse.Namespace) -> int:
    from app.train.sweep_plot import write_plot

    try:
        print(f"wrote {write_plot(Path(args.sweep_dir))}")
    except (OSError, ValueError, KeyError) as error:
        return fail(f"cannot draw the sweep plot in {args.sweep_dir}: {error}")
    return EXIT_OK


def command_predict(args: argparse.Namespace) -> int:
    from app import predictions
    from app.train.errors import UserError
    from app.train.predict import predict

    if args.batch_size < 1:
        return fail(f"--batch-size {args.batch_size}: give 1 or more")
    try:
        rows = predict(Path(args.run_dir), args.paths, args.batch_size)
    except UserError as error:
        return fail(str(error))
    print(predictions.to_json(rows) if args.json else predictions.format_table(rows), flush=True)
    return EXIT_OK


def command_data(args: argparse.Namespace) -> int:
    from app.train.digits import write_digits

    data_dir = Path(args.data_dir) if args.data_dir else default_dir(DATA_MOUNT, "data")
    try:
        target, written = write_digits(data_dir)
    except OSError as error:
        return fail(f"cannot write the dataset into {data_dir}: {error.strerror or error}")
    print(f"{'wrote' if written else 'already present, left as is:'} {target}")
    return EXIT_OK


def command_train(args: argparse.Namespace) -> int:
    from app.train.preflight import TrainRequest
    from app.train.session import train

    return train(
        TrainRequest(
            data_dir=Path(args.data_dir) if args.data_dir else default_dir(DATA_MOUNT, "data"),
            output_dir=Path(args.output_dir) if args.output_dir else default_dir(OUTPUTS_MOUNT, "outputs"),
            config_file=args.config,
            overrides=tuple(args.overrides),
            run_id=args.run_id,
            resume=args.resume,
            cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        )
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    commands = {
        "data": command_data,
        "train": command_train,
        "sweep-plot": command_sweep_plot,
        "predict": command_predict,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

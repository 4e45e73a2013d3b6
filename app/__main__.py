"""`python -m app data DIR` and `python -m app train ...`: the entry point inside the container.

User errors end as one line on stderr starting `trainbox: ` and exit 2; a failed training
exits 1; SIGINT/SIGTERM exit 130/143 with the run marked interrupted.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from pathlib import Path

from app import manifest
from app.config import ConfigError, load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise SystemExit(_fail(f"{self.prog}: {message}"))


def _fail(message: str) -> int:
    print(f"trainbox: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def _default_dir(container_path: str, local: str) -> Path:
    return Path(container_path) if Path(container_path).is_dir() else Path(local)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m app", description="trainbox: reproducible TensorFlow training")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    data = commands.add_parser("data", help="write the bundled digits dataset as PNG class folders")
    data.add_argument("data_dir", nargs="?", help="data directory (default /data or ./data)")
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
    train.add_argument("--data-dir", help="data directory (default /data if it exists, else ./data)")
    train.add_argument(
        "--output-dir", help="output directory (default /outputs if it exists, else ./outputs)"
    )
    return parser


def command_data(args: argparse.Namespace) -> int:
    from app.train.export import export_digits

    data_dir = Path(args.data_dir) if args.data_dir else _default_dir("/data", "data")
    try:
        target, written = export_digits(data_dir)
    except OSError as error:
        return _fail(f"cannot write the dataset into {data_dir}: {error.strerror or error}")
    print(f"{'wrote' if written else 'already present, left as is:'} {target}")
    return EXIT_OK


def _resolve_train_config(args: argparse.Namespace, output_dir: Path):
    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume reads the run's own config.yaml; drop --config/--set")
        if args.run_id and args.run_id != args.resume:
            raise ConfigError("--run-id and --resume name different runs")
        if not manifest.is_valid_run_id(args.resume):
            raise ConfigError(f"--resume {args.resume!r} is not a run id")
        config_path = output_dir / args.resume / "config.yaml"
        if not config_path.is_file():
            raise ConfigError(f"--resume {args.resume}: no such run in {output_dir}")
        return load_config(config_path), args.resume
    return load_config(args.config, args.overrides), args.run_id or manifest.new_run_id()


def command_train(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else _default_dir("/data", "data")
    output_dir = Path(args.output_dir) if args.output_dir else _default_dir("/outputs", "outputs")
    try:
        config, run_id = _resolve_train_config(args, output_dir)
    except ConfigError as error:
        return _fail(error)

    from app.train import distribute
    from app.train.errors import Interrupted, UserError
    from app.train.preflight import preflight

    try:
        cluster = distribute.detect()
    except ValueError as error:
        return _fail(error)

    try:
        checked = preflight(config, data_dir, output_dir, run_id, resume=bool(args.resume))
    except UserError as error:
        return _fail(error)

    from app.train import run as training  # TensorFlow loads here, after the cheap checks
    from app.train import threads

    training.install_signal_handlers()
    threads.configure()  # pools sized to the container's CPU quota, before TensorFlow's first op
    run = None
    try:
        strategy = distribute.make_strategy(cluster)  # before any other TensorFlow op
        if cluster.distributed:
            print(f"worker {cluster.index} of {cluster.workers} ({cluster.source})", flush=True)
        run, dataset = training.start(config, run_id, checked, cluster)
        print(
            f"run {run_id}: {len(dataset.train)} training images, classes {dataset.class_names}", flush=True
        )
        test_accuracy = training.execute(run, dataset, data_dir, resume=bool(args.resume), strategy=strategy)
    except UserError as error:
        if run is not None and run.record.get("status") == "running":
            training.mark(run, "failed", error=str(error))
        return _fail(error)
    except Interrupted as interrupt:
        name = (
            "SIGTERM"
            if interrupt.signum == 15
            else "SIGINT"
            if interrupt.signum == 2
            else str(interrupt.signum)
        )
        if run is not None:
            training.mark(run, "interrupted", interrupted_by=name)
            _print_run_dir(run.run_dir)
            print(
                f"trainbox: interrupted by {name}; continue with --resume {run_id}",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(f"trainbox: interrupted by {name}", file=sys.stderr, flush=True)
        return 128 + interrupt.signum
    except Exception as error:
        full = _disk_full(error)
        if run is not None and full is not None:
            # Checkpoints are written under a temporary name and renamed, so the last
            # complete one survives: free space, then resume from it.
            line = "the disk holding the output directory is full"
            training.mark(run, "failed", error=f"{line}: {' '.join(str(full).split())[:300]}")
            _print_run_dir(run.run_dir)
            print(f"trainbox: {line}: free space, then continue with --resume {run_id}",
                  file=sys.stderr, flush=True)
            return EXIT_FAILED
        traceback.print_exc()
        line = " ".join(f"{type(error).__name__}: {error}".split())[:500]
        if run is not None:
            training.mark(run, "failed", error=line)
            _print_run_dir(run.run_dir)
        print(f"trainbox: training failed: {line}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    _print_run_dir(run.run_dir)
    if test_accuracy is not None and not _host_reports():
        print(f"test accuracy: {test_accuracy:.4f}", flush=True)
    return EXIT_OK


def _host_reports() -> bool:
    """Under `invoke train` the host prints the outcome, with the paths the user knows."""
    return os.environ.get("TRAINBOX_LAUNCHER") == "invoke"


def _print_run_dir(run_dir: Path) -> None:
    if not _host_reports():
        print(f"run directory: {run_dir}", flush=True)


def _disk_full(error: BaseException | None) -> BaseException | None:
    """The ENOSPC/EDQUOT error anywhere in the chain (Keras and TensorFlow wrap some)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        if "No space left on device" in str(error):
            return error
        error = error.__cause__ or error.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.command == "data":
        return command_data(args)
    return command_train(args)


if __name__ == "__main__":
    sys.exit(main())

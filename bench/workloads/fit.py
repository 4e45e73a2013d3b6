"""The app's training step for a few epochs, under one setting; the steps pair two
settings in separate containers (op determinism, for one, cannot be switched off in-process).

    python -m bench.workloads.fit --epochs E [--set KEY=VALUE ...] [--threads host|quota]
"""

from __future__ import annotations

import sys

from bench.workloads import numerics_first

CONFIG = numerics_first.prepare()  # before TensorFlow loads (in common)

from bench.workloads import common  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    arguments = common.parser(__doc__.splitlines()[0])
    arguments.add_argument(
        "--threads",
        choices=("host", "quota"),
        default="host",
        help="host: TensorFlow's own pool sizes; quota: app.train.threads sizes them from the cgroup",
    )
    args = arguments.parse_args(argv)
    if args.threads == "quota":
        from app.train import numerics, threads

        # before TensorFlow's first op, as app/train/session.py does
        threads.configure(fixed=numerics.pool_size(CONFIG, None))
    config, dataset = common.load(args)
    return common.emit(
        {
            "train_images": len(dataset.train),
            "seconds": common.fit_pipeline(config, dataset, args.epochs),
            "deterministic": config.deterministic,
            "threads": common.threads(),
        },
        args,
    )


if __name__ == "__main__":
    sys.exit(main())

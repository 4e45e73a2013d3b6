"""What EpochRecorder pays after every epoch to write a checkpoint (model + RNG state,
atomic rename), next to the epoch time of the same model in the same container.

    python -m bench.workloads.checkpoint --epochs E --checkpoints K
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from app.train import checkpoint
from bench.workloads import common


def main(argv: list[str] | None = None) -> int:
    arguments = common.parser(__doc__.splitlines()[0])
    arguments.add_argument("--checkpoints", type=int, default=5)
    args = arguments.parse_args(argv)
    config, dataset = common.load(args)
    model = common.fresh_model(config, dataset)
    epoch_seconds = common.fit_pipeline(config, dataset, args.epochs, model=model)
    history = [{"epoch": epoch} for epoch in range(1, args.epochs + 1)]
    save_seconds = []
    with tempfile.TemporaryDirectory(dir=args.output_dir) as scratch:
        for repeat in range(args.checkpoints):
            started = time.perf_counter()
            checkpoint.save(Path(scratch) / "checkpoints", model, args.epochs + repeat, history)
            save_seconds.append(time.perf_counter() - started)
    return common.emit({"epoch_seconds": epoch_seconds, "checkpoint_seconds": save_seconds}, args)


if __name__ == "__main__":
    sys.exit(main())

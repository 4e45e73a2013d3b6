"""Per-step time of 2 workers (MultiWorkerMirroredStrategy, one host) vs 1 worker.

    python bench/multiworker.py [--epochs 4] [--image trainbox:cpu]

Record only: on one host both workers share the same cores, so this shows the cost of the
collective all-reduce and of splitting the host, not scaling (docs/cluster.md says what to
expect across nodes). Epoch 1 (tracing, warm-up) is left out; the time per step is taken
from the run's own history (seconds per epoch / steps per epoch).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.launch.training import TrainRequest, train


def per_step_seconds(run_dir: Path) -> tuple[float, int]:
    record = json.loads((run_dir / "manifest.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    workers = (record.get("cluster") or {}).get("workers", 1)
    batch = record["config"]["training"]["batch_size"] * workers
    examples = record["data"]["counts"]["train"]
    steps = -(-examples // batch) if workers == 1 else examples // batch + (examples % batch >= workers)
    seconds = [row["seconds"] for row in history[1:]] or [row["seconds"] for row in history]
    return statistics.median(seconds) / steps, batch


def run(workers: int, epochs: int, image: str | None, output_dir: Path) -> Path:
    before = set(output_dir.iterdir())
    request = TrainRequest(
        overrides=(f"training.epochs={epochs}",), output_dir=str(output_dir), image=image, workers=workers
    )
    status = train(request, echo=lambda *args, **kwargs: None)
    if status != 0:
        raise SystemExit(f"the {workers}-worker run failed (exit {status})")
    (run_dir,) = set(output_dir.iterdir()) - before
    return run_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image", default=None, help="image tag (default trainbox:cpu)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainbox-bench-") as tmp:
        results = {}
        for workers in (1, 2):
            results[workers] = per_step_seconds(run(workers, args.epochs, args.image, Path(tmp)))
    (one, batch_one), (two, batch_two) = results[1], results[2]
    print(f"1 worker : {one * 1000:7.1f} ms/step, global batch {batch_one}")
    print(f"2 workers: {two * 1000:7.1f} ms/step, global batch {batch_two} (same host)")
    print(f"per-step time ratio (2 workers / 1 worker): {two / one:.2f}")
    print(f"throughput ratio (examples/s, 2 workers / 1 worker): {(batch_two / two) / (batch_one / one):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

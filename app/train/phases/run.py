"""One run as this process sees it, handed from phase to phase."""

from __future__ import annotations

import contextlib

import keras

from app import manifest
from app.container_env import LaunchFacts
from app.manifest import RunRecord, Status
from app.train import checkpoint, distribute
from app.train.preflight import Preflight


class Run:
    """One run as this process sees it: where it writes, its manifest, its model."""

    def __init__(self, checked: Preflight, cluster: distribute.Cluster, launch: LaunchFacts) -> None:
        self.config = checked.config
        self.run_id = checked.run_id
        self.run_dir = checked.run_dir  # where this process writes (a scratch folder on non-chief workers)
        self.checkpoint_dir = checked.run_dir / "checkpoints"  # where a resume reads from
        self.resuming = checked.record is not None
        self.record = checked.record or RunRecord(run_id=checked.run_id, status=Status.RUNNING)
        self.cluster = cluster
        self.launch = launch
        self.claimed = False  # this process wrote the `running` manifest: it records the end
        self.history: list[dict] = []
        self.model: keras.Model | None = None
        self.first_epoch = 0
        self.best: checkpoint.Best | None = None  # with training.restore_best

    def save_manifest(self) -> None:
        manifest.write_record(self.run_dir, self.record)

    def final_metrics(self) -> dict:
        metrics = dict(self.record.metrics or {})
        if self.history:
            last = self.history[-1]
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                if key in last:
                    metrics[f"final_{key}"] = last[key]
        return metrics

    def mark(self, status: Status, **fields: str) -> None:
        """Record how the run ended early (failed, interrupted)."""
        for key, value in dict(fields, status=status, finished_at=manifest.utc_now()).items():
            setattr(self.record, key, value)
        with contextlib.suppress(OSError):  # e.g. the disk filled up: the exit status still tells
            self.save_manifest()

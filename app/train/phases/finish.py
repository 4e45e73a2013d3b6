"""The finish phase: the files a completed run leaves, and its `completed` manifest."""

from __future__ import annotations

from app import manifest
from app.manifest import Status
from app.train import hparams, outputs, plots
from app.train.model import weights_sha256
from app.train.phases.run import Run
from app.train.signals import critical


def finish(run: Run, metrics: dict) -> None:
    """The model, its curves, then the `completed` manifest; a signal waits until all are written."""
    with critical():
        outputs.save_model(run.model, run.run_dir)
        title = plots.run_title(run.run_id, outputs.json_safe(metrics), run.config.to_dict())
        outputs.save_learning_curves(run.run_dir, run.history, title)
        hparams.write_hparams(
            run.run_dir / "tensorboard", run.run_id, run.config.to_dict(), metrics, run.config.training.epochs
        )
        record = run.record
        record.metrics = outputs.json_safe(metrics)
        record.weights_sha256 = weights_sha256(run.model)
        record.status = Status.COMPLETED
        record.finished_at = manifest.utc_now()
        run.save_manifest()

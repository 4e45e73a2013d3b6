"""What runs around each epoch of the fit phase: the schedule's learning rate, the record
of the finished epoch, TensorBoard's logs."""

from __future__ import annotations

import time
from pathlib import Path

import keras

from app.train import checkpoint, control, fine_tune, outputs
from app.train.phases.run import Run
from app.train.signals import critical


def epoch_callbacks(run: Run, first_epoch: int) -> list:
    # The schedule first: it adds the epoch's learning rate to the logs the others record.
    return [*schedule_callbacks(run, first_epoch), EpochRecorder(run), *tensorboard_callbacks(run.run_dir)]


class EpochRecorder(keras.callbacks.Callback):
    """After every epoch: history row, checkpoint, history files, manifest (in that order)."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **outputs.json_safe({k: float(v) for k, v in (logs or {}).items()})}
        row["seconds"] = round(time.monotonic() - self.started, 3)
        with critical():
            self.record_epoch(row)
        if control.stops_early(self.run.history, self.run.config.training.early_stopping_patience):
            self.model.stop_training = True

    def record_epoch(self, row: dict) -> None:
        """The epoch's row in the history, then the checkpoint, the history files and the manifest."""
        run, epoch = self.run, row["epoch"]
        training = run.config.training
        run.history.append(row)
        if training.restore_best and control.best_epoch(run.history) == epoch:
            run.best = checkpoint.Best(epoch, self.model.get_weights())
        best = run.best if training.restore_best else None
        checkpoint.save(run.run_dir / "checkpoints", self.model, epoch, run.history, best)
        outputs.write_history(run.run_dir, run.history)
        run.record.epochs_completed = epoch
        run.record.metrics = run.final_metrics()
        run.save_manifest()


def schedule_callbacks(run: Run, first_epoch: int) -> list:
    """The schedule's rate per epoch; after the backbone is unfrozen, scaled to the fine-tuning rate."""
    training = run.config.training
    if training.lr_schedule == "constant":
        return []
    scale = fine_tune.rate_scale(run.config, first_epoch)
    return [
        keras.callbacks.LearningRateScheduler(lambda epoch, _: control.learning_rate(training, epoch) * scale)
    ]


def tensorboard_callbacks(run_dir: Path) -> list:
    try:
        import tensorboard  # noqa: F401 - tf.summary needs it; the image always has it
    except ImportError:
        print("tensorboard is not installed: no TensorBoard logs for this run", flush=True)
        return []
    return [keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False)]

"""One training run in four phases, called in order by app/train/session.py.

start     claim the run: a new one gets its directory (and its lock), config.yaml and a
          `running` manifest; a resumed one a `resumes` entry. Build the model, or restore
          it from the newest checkpoint that loads.
fit       train the remaining epochs; after each: checkpoint, history, manifest.
evaluate  the model on the test split.
finish    model.keras, learning_curves.png and the `completed` manifest.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import keras

from app import manifest
from app.container_env import ImageFacts, LaunchFacts
from app.manifest import RunRecord, Status
from app.train import checkpoint, data, distribute, environment, numerics, outputs
from app.train.determinism import set_determinism
from app.train.errors import UserError
from app.train.model import build_model, compile_model, weights_sha256
from app.train.preflight import Preflight, hold_lock
from app.train.signals import critical


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


# --- start ---------------------------------------------------------------------------------


def start(run: Run, dataset: data.Dataset, data_dir: Path, strategy, lock: contextlib.ExitStack) -> None:
    """Claim the run (after this, the run's end is recorded whatever happens), then get its model."""
    config = run.config
    determinism = set_determinism(config.seed, config.deterministic)
    facts = {
        **environment.provenance(run.launch, ImageFacts.from_environment()),
        "numerics": numerics.record(config),
    }
    data_record = describe_data(dataset, data_dir)
    cluster_record = {
        **run.cluster.record(),
        "per_worker_batch_size": config.training.batch_size,
        "global_batch_size": config.training.batch_size * run.cluster.workers,
    }
    restored = None
    if run.resuming:
        check_same_data(run, data_record)
        with strategy_scope(strategy):
            restored, skipped = checkpoint.load_newest(run.checkpoint_dir)
        with critical():
            use_directory(run, lock)
            record_resume(run.record, restored, skipped, facts, cluster_record)
            run.save_manifest()
            run.claimed = True
    else:
        with critical():  # a signal now would leave a directory without a manifest
            use_directory(run, lock)
            outputs.write_config(run.run_dir, config)
            run.record = new_record(run, facts, determinism, data_record, cluster_record)
            run.save_manifest()
            run.claimed = True
    outputs.write_class_names(run.run_dir, dataset.class_names)
    with strategy_scope(strategy):  # variables mirrored on every worker
        restore_or_build_model(run, restored, dataset)
    if strategy is not None:
        distribute.prepare_model(run.model, strategy, data.sample_batch(dataset.train, 1))


def strategy_scope(strategy):
    """A fresh scope each time: a distribution strategy's scope cannot be entered twice."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def use_directory(run: Run, lock: contextlib.ExitStack) -> None:
    """The chief creates (or reuses, on resume) the run directory and holds its lock until it
    exits; another worker writes into a throwaway folder, removed at exit."""
    if not run.cluster.is_chief:
        scratch = Path(tempfile.mkdtemp(prefix=f"trainbox-worker{run.cluster.index}-")) / run.run_id
        scratch.mkdir()
        atexit.register(shutil.rmtree, scratch.parent, ignore_errors=True)
        run.run_dir = scratch
        return
    if run.resuming:
        return  # the preflight took the lock before anything was written
    try:
        run.run_dir.mkdir()
    except FileExistsError:
        raise UserError(
            f"run directory {run.run_dir} already exists; run directories are never reused"
        ) from None
    hold_lock(lock, run.run_dir, f"run {run.run_id}")


def describe_data(dataset: data.Dataset, data_dir: Path) -> dict:
    root = data_dir.resolve()
    return {
        "data_dir": str(data_dir),
        "folders": {key: folder.relative_to(root).as_posix() for key, folder in dataset.folders.items()},
        **dataset.manifest_record(),
    }


def check_same_data(run: Run, data_record: dict) -> None:
    recorded = run.record.data.fingerprint if run.record.data is not None else None
    if recorded not in (None, data_record["fingerprint"]):
        raise UserError(
            f"--resume {run.run_id}: the data changed since the run started (fingerprint differs)"
        )
    if run.record.workers != run.cluster.workers:
        print(
            f"warning: run {run.run_id} started with {run.record.workers} worker(s), resumed with "
            f"{run.cluster.workers}: the global batch changes, so the result differs",
            flush=True,
        )


def new_record(
    run: Run, facts: dict, determinism: dict, data_record: dict, cluster_record: dict
) -> RunRecord:
    now = manifest.utc_now()
    reproduces = {"reproduces": run.launch.reproduces} if run.launch.reproduces else {}
    return RunRecord(
        run_id=run.run_id,
        status=Status.RUNNING,
        created_at=now,
        **reproduces,
        config=run.config.to_dict(),
        seed=run.config.seed,
        determinism=determinism,
        data=data_record,
        epochs_completed=0,
        metrics={},
        cluster=cluster_record,
        **facts,
        started_at=now,
    )


def record_resume(
    record: RunRecord, restored, skipped: list[dict], facts: dict, cluster_record: dict
) -> None:
    entry = {
        "at": manifest.utc_now(),
        "from_checkpoint": restored.name if restored else None,
        "from_epoch": restored.epoch if restored else 0,
        "skipped_checkpoints": skipped,
        **facts,
        "cluster": cluster_record,
    }
    record.resumes = [*(record.resumes or []), entry]
    record.resumed_from = entry
    record.status = Status.RUNNING
    record.forget("error")


def restore_or_build_model(run: Run, restored: checkpoint.Restored | None, dataset: data.Dataset) -> None:
    if restored is not None:
        run.model, run.first_epoch, run.history = restored.model, restored.epoch, restored.history
        print(f"resuming run {run.run_id} from {restored.name} (epoch {run.first_epoch})", flush=True)
        return
    config = run.config
    run.model = build_model(
        config.model, dataset.image_shape, len(dataset.class_names), config.training.precision
    )
    compile_model(run.model, config.training, numerics.jit_compile(config))
    if run.resuming:  # stopped before the first checkpoint: start over in the same directory
        print(f"resuming run {run.run_id} from the start (no usable checkpoint)", flush=True)
    else:
        run.model.summary(print_fn=lambda line, **_: print(line, flush=True))


# --- fit -----------------------------------------------------------------------------------


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
        run = self.run
        with critical():
            run.history.append(row)
            checkpoint.save(run.run_dir / "checkpoints", self.model, epoch + 1, run.history)
            outputs.write_history(run.run_dir, run.history)
            run.record.epochs_completed = epoch + 1
            run.record.metrics = run.final_metrics()
            run.save_manifest()


def tensorboard_callbacks(run_dir: Path) -> list:
    try:
        import tensorboard  # noqa: F401 - tf.summary needs it; the image always has it
    except ImportError:
        print("tensorboard is not installed: no TensorBoard logs for this run", flush=True)
        return []
    return [keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False)]


def fit(run: Run, dataset: data.Dataset, strategy) -> None:
    """Train from run.first_epoch to the configured epochs, recording after each one."""
    config = run.config
    training = config.training
    if run.first_epoch >= training.epochs:
        return
    if strategy is not None:  # global batch = per-worker batch x workers, sharded by worker
        train_data, batches = distribute.training_dataset(
            strategy,
            run.cluster.workers,
            dataset.train,
            training.batch_size,
            config.seed,
            run.first_epoch,
            training.epochs,
        )
    else:
        train_data = data.training_pipeline(
            dataset.train, training.batch_size, config.seed, run.first_epoch, training.epochs
        )
        batches = data.batches_per_epoch(dataset.train, training.batch_size)
    validation = dataset.validation
    validation_data = None if validation is None else data.eval_pipeline(validation, training.batch_size)
    run.model.fit(
        train_data,
        epochs=training.epochs,
        initial_epoch=run.first_epoch,
        steps_per_epoch=batches,
        validation_data=validation_data,
        callbacks=[EpochRecorder(run), *tensorboard_callbacks(run.run_dir)],
        shuffle=False,  # the pipeline already orders each epoch from (seed, epoch)
        verbose=2,
    )


# --- evaluate and finish ---------------------------------------------------------------------


def evaluate(run: Run, dataset: data.Dataset) -> dict:
    """The run's metrics: the last epoch's, plus test accuracy and loss when there is a test set."""
    metrics = run.final_metrics()
    if dataset.test is not None:
        results = run.model.evaluate(
            data.eval_pipeline(dataset.test, run.config.training.batch_size), verbose=0, return_dict=True
        )
        metrics.update(test_accuracy=float(results["accuracy"]), test_loss=float(results["loss"]))
    return metrics


def finish(run: Run, metrics: dict) -> None:
    """The model, its curves, then the `completed` manifest; a signal waits until all are written."""
    with critical():
        outputs.save_model(run.model, run.run_dir)
        outputs.save_learning_curves(run.run_dir, run.history)
        record = run.record
        record.metrics = outputs.json_safe(metrics)
        record.weights_sha256 = weights_sha256(run.model)
        record.status = Status.COMPLETED
        record.finished_at = manifest.utc_now()
        run.save_manifest()

"""One training run in four phases, called in order by app/train/session.py.

start     claim the run: a new one gets its directory (and its lock), config.yaml and a
          `running` manifest; a resumed one a `resumes` entry. Build the model, or restore
          it from the newest checkpoint that loads.
fit       train the remaining epochs (or until early stopping); after each: checkpoint,
          history, manifest. Then, with restore_best, the best epoch's weights.
evaluate  the model on the test split; the results to look at (app/train/results.py).
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
from app.train import (
    checkpoint,
    control,
    data,
    distribute,
    environment,
    fine_tune,
    hparams,
    networks,
    numerics,
    outputs,
    plots,
)
from app.train import results as test_results
from app.train.determinism import set_determinism
from app.train.errors import UserError
from app.train.model import compile_model, weights_sha256
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
    restored = network = None
    if run.resuming:
        check_same_data(run, data_record)
        networks.prepare_loading(config)
        with strategy_scope(strategy):
            restored, skipped = checkpoint.load_newest(run.checkpoint_dir)
            if restored is None:
                network = build_network(run, dataset, data_dir)
        with critical():
            use_directory(run, lock)
            record_resume(run.record, restored, skipped, facts, cluster_record)
            run.save_manifest()
            run.claimed = True
    else:
        with strategy_scope(strategy):  # a model that cannot be built stops the run before it is claimed
            network = build_network(run, dataset, data_dir)
        with critical():  # a signal now would leave a directory without a manifest
            use_directory(run, lock)
            outputs.write_config(run.run_dir, config)
            networks.save_code(network, run.run_dir)
            run.record = new_record(run, facts, determinism, data_record, cluster_record)
            run.record.model = network.record
            run.save_manifest()
            run.claimed = True
    outputs.write_class_names(run.run_dir, dataset.class_names)
    with strategy_scope(strategy):  # the optimizer's variables mirrored on every worker too
        use_model(run, restored, network)
    if strategy is not None:
        distribute.prepare_model(run.model, strategy, data.sample_batch(dataset.train, 1))


def build_network(run: Run, dataset: data.Dataset, data_dir: Path) -> networks.Network:
    """The model config.model names (variables mirrored on every worker in a strategy's scope)."""
    return networks.build(
        run.config, dataset.image_shape, len(dataset.class_names), data_dir, run.launch.keras_cache_host
    )


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
    lineage = {"reproduces": run.launch.reproduces} if run.launch.reproduces else {}
    if run.launch.sweep_id and run.launch.sweep_trial is not None:
        lineage["sweep"] = {"id": run.launch.sweep_id, "trial": run.launch.sweep_trial}
    return RunRecord(
        run_id=run.run_id,
        status=Status.RUNNING,
        created_at=now,
        **lineage,
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


def use_model(run: Run, restored: checkpoint.Restored | None, network: networks.Network | None) -> None:
    if restored is not None:
        run.model, run.first_epoch, run.history = restored.model, restored.epoch, restored.history
        run.best = restored.best
        print(f"resuming run {run.run_id} from {restored.name} (epoch {run.first_epoch})", flush=True)
        return
    run.model = network.model
    compile_model(run.model, run.config.training, jit_compile=numerics.jit_compile(run.config))
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
        training = run.config.training
        with critical():
            run.history.append(row)
            if training.restore_best and control.best_epoch(run.history) == epoch + 1:
                run.best = checkpoint.Best(epoch + 1, self.model.get_weights())
            best = run.best if training.restore_best else None
            checkpoint.save(run.run_dir / "checkpoints", self.model, epoch + 1, run.history, best)
            outputs.write_history(run.run_dir, run.history)
            run.record.epochs_completed = epoch + 1
            run.record.metrics = run.final_metrics()
            run.save_manifest()
        if control.stops_early(run.history, training.early_stopping_patience):
            self.model.stop_training = True


def tensorboard_callbacks(run_dir: Path) -> list:
    try:
        import tensorboard  # noqa: F401 - tf.summary needs it; the image always has it
    except ImportError:
        print("tensorboard is not installed: no TensorBoard logs for this run", flush=True)
        return []
    return [keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False)]


def fit(run: Run, dataset: data.Dataset, strategy) -> None:
    """Train the remaining epochs (unless the run already stopped early), then settle on the
    weights the run keeps: the last epoch's, or with training.restore_best the best one's."""
    training = run.config.training
    if control.watches_validation(training) and dataset.validation is None:
        raise UserError(
            "training.early_stopping_patience / restore_best watch the validation loss, but this "
            "data has no validation images: set data.validation, or a data.validation_split that "
            "leaves some"
        )
    done = run.first_epoch >= training.epochs or control.stops_early(
        run.history, training.early_stopping_patience
    )
    if not done:
        for first, end in fine_tune.stages(run.config, run.first_epoch):  # two with freeze_backbone_epochs
            with strategy_scope(strategy):  # a recompiled optimizer's variables are mirrored too
                fine_tune.enter_stage(run.model, run.config, first)
            train_epochs(run, dataset, strategy, first, end)
            if control.stops_early(run.history, training.early_stopping_patience):
                break
    keep_weights(run)


def class_weights(run: Run, dataset: data.Dataset):
    """The per-class loss weights (training.class_weight), recorded in the manifest; or None."""
    if run.config.training.class_weight != "balanced":
        return None
    weights = control.balanced_class_weights(dataset.train.labels, len(dataset.class_names))
    run.record.class_weights = {
        name: float(weight) for name, weight in zip(dataset.class_names, weights, strict=True)
    }
    return weights


def schedule_callbacks(run: Run, first_epoch: int) -> list:
    """The schedule's rate per epoch; after the backbone is unfrozen, scaled to the fine-tuning rate."""
    training = run.config.training
    if training.lr_schedule == "constant":
        return []
    scale = fine_tune.rate_scale(run.config, first_epoch)
    return [
        keras.callbacks.LearningRateScheduler(lambda epoch, _: control.learning_rate(training, epoch) * scale)
    ]


def train_epochs(run: Run, dataset: data.Dataset, strategy, first_epoch: int, epochs: int) -> None:
    """Train epochs first_epoch+1 .. epochs, recording after each one."""
    config = run.config
    training = config.training
    weights = class_weights(run, dataset)
    if strategy is not None:  # global batch = per-worker batch x workers, sharded by worker
        train_data, batches = distribute.training_dataset(
            strategy,
            run.cluster.workers,
            dataset.train,
            training.batch_size,
            config.seed,
            first_epoch,
            epochs,
            weights,
        )
    else:
        train_data = data.training_pipeline(
            dataset.train, training.batch_size, config.seed, first_epoch, epochs, weights
        )
        batches = data.batches_per_epoch(dataset.train, training.batch_size)
    validation = dataset.validation
    validation_data = None if validation is None else data.eval_pipeline(validation, training.batch_size)
    run.model.fit(
        train_data,
        epochs=epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=batches,
        validation_data=validation_data,
        # The schedule first: it adds the epoch's learning rate to the logs the others record.
        callbacks=[
            *schedule_callbacks(run, first_epoch),
            EpochRecorder(run),
            *tensorboard_callbacks(run.run_dir),
        ],
        shuffle=False,  # the pipeline already orders each epoch from (seed, epoch)
        verbose=2,
    )


def keep_weights(run: Run) -> None:
    """With restore_best, the best epoch's weights replace the last epoch's; the manifest says
    which epoch's weights the run keeps, and whether it stopped early."""
    training = run.config.training
    if not control.watches_validation(training):
        return
    last = len(run.history)
    record = run.record
    record.best_epoch = control.best_epoch(run.history)
    if training.early_stopping_patience is not None:
        record.stopped_early = last < training.epochs
    record.weights_epoch = last
    if training.restore_best and run.best is not None:
        if run.best.epoch != last:
            run.model.set_weights(run.best.weights)
        record.weights_epoch = run.best.epoch


# --- evaluate and finish ---------------------------------------------------------------------


def evaluate(run: Run, dataset: data.Dataset) -> dict:
    """The run's metrics: the last epoch's, plus test accuracy and loss when there is a test set."""
    metrics = run.final_metrics()
    if dataset.test is not None:
        results = run.model.evaluate(
            data.eval_pipeline(dataset.test, run.config.training.batch_size), verbose=0, return_dict=True
        )
        metrics.update(test_accuracy=float(results["accuracy"]), test_loss=float(results["loss"]))
        if run.cluster.is_chief:  # the other workers write into a throwaway folder
            metrics.update(
                test_results.write_results(
                    run.run_dir,
                    run.run_id,
                    run.model,
                    dataset.test,
                    dataset.class_names,
                    run.config.training.batch_size,
                    step=len(run.history),
                    run_title=plots.run_title(run.run_id, metrics, run.config.to_dict()),
                )
            )
    return metrics


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

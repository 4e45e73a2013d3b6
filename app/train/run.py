"""One training run: (config, data dir, run dir) -> manifest, model, history, checkpoints.

Exit codes (see __main__): 0 completed, 1 failed, 2 user error, 130/143 interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import math
import os
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from app import manifest
from app.config import Config
from app.train import checkpoint, data, distribute, environment, files
from app.train.errors import Interrupted, UserError
from app.train.model import build_model, compile_model, weights_sha256
from app.train.preflight import Preflight

# --- signals: SIGTERM/SIGINT raise Interrupted, except inside a critical section ---------

_critical_depth = 0
_pending_signal: int | None = None


def _on_signal(signum, frame):
    global _pending_signal
    if _critical_depth:
        _pending_signal = signum
        return
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


@contextmanager
def critical():
    """Finish writing what must not be torn (checkpoint + manifest) before honouring a signal."""
    global _critical_depth, _pending_signal
    _critical_depth += 1
    try:
        yield
    finally:
        _critical_depth -= 1
        if not _critical_depth and _pending_signal is not None:
            signum, _pending_signal = _pending_signal, None
            raise Interrupted(signum)


# --- determinism ------------------------------------------------------------------------


def set_determinism(seed: int, deterministic: bool) -> dict:
    keras.utils.set_random_seed(seed)  # Python, NumPy, TensorFlow and Keras' own seed
    record = {
        "enabled": deterministic,
        "seeded": ["python.random", "numpy", "tensorflow", "keras"],
        "data_order": "numpy default_rng([seed, epoch]).permutation per epoch",
        "validation_split": "numpy default_rng([seed, 0x5EED]), stratified",
        "dropout_rng": "Keras SeedGenerator state saved in every checkpoint",
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
    }
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        record["op_determinism"] = True
        record["tf_data"] = "deterministic=True maps (op determinism also forces it)"
    else:
        record["op_determinism"] = False
    return record


# --- small writers ---------------------------------------------------------------------


def _clean(value):
    """JSON-safe metrics: NaN/inf become None, NumPy scalars become floats."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_history(run_dir: Path, history: list[dict]) -> None:
    manifest.write_json_atomic(run_dir / "history.json", history)
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["epoch"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    manifest.write_bytes_atomic(run_dir / "history.csv", buffer.getvalue().encode("utf-8"))


def plot_learning_curves(run_dir: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from app.train.plots import learning_curves_figure

    figure = learning_curves_figure(history)
    figure.savefig(run_dir / "learning_curves.png", dpi=100)
    plt.close(figure)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    manifest.fsync_dir(path.parent)


# --- the run ---------------------------------------------------------------------------


def tensorboard_callbacks(run_dir: Path) -> list:
    try:
        import tensorboard  # noqa: F401 - tf.summary needs it; the image always has it
    except ImportError:
        print("tensorboard is not installed: no TensorBoard logs for this run", flush=True)
        return []
    return [keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False)]


class EpochRecorder(keras.callbacks.Callback):
    """After every epoch: history row, checkpoint, history files, manifest (in that order)."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **_clean({k: float(v) for k, v in (logs or {}).items()})}
        row["seconds"] = round(time.monotonic() - self.started, 3)
        with critical():
            self.run.history.append(row)
            checkpoint.save(self.run.run_dir / "checkpoints", self.model, epoch + 1, self.run.history)
            write_history(self.run.run_dir, self.run.history)
            self.run.record["epochs_completed"] = epoch + 1
            self.run.record["metrics"] = self.run.final_metrics()
            self.run.save_manifest()


class Run:
    def __init__(
        self, config: Config, run_id: str, run_dir: Path, record: dict,
        cluster: distribute.Cluster | None = None, checkpoint_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.run_dir = run_dir  # where this worker writes (a throwaway folder on non-chief workers)
        self.record = record
        self.history: list[dict] = []
        self.cluster = cluster or distribute.Cluster(workers=1, index=0, source="single")
        self.checkpoint_dir = checkpoint_dir or run_dir / "checkpoints"  # where a resume reads from

    def save_manifest(self) -> None:
        manifest.write_manifest(self.run_dir, self.record)

    def final_metrics(self) -> dict:
        metrics = dict(self.record.get("metrics") or {})
        if self.history:
            last = self.history[-1]
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                if key in last:
                    metrics[f"final_{key}"] = last[key]
        return metrics


def start(
    config: Config, run_id: str, checked: Preflight, cluster: distribute.Cluster | None = None
) -> tuple[Run, data.Dataset]:
    """Decode the data, then claim the run directory (new runs) with a `running` manifest."""
    dataset = data.load_dataset(checked.plan, config.data)
    record = checked.record
    if cluster is not None and not cluster.is_chief:
        # Only the chief keeps anything; this worker reads the chief's checkpoints on resume.
        scratch = Path(tempfile.mkdtemp(prefix=f"trainbox-worker{cluster.index}-")) / run_id
        scratch.mkdir()
        atexit.register(shutil.rmtree, scratch.parent, ignore_errors=True)
        base = dict(record) if record is not None else {"run_id": run_id, "status": "running"}
        return Run(config, run_id, scratch, base, cluster, checked.run_dir / "checkpoints"), dataset
    if record is None:
        try:
            checked.run_dir.mkdir()
        except FileExistsError:
            raise UserError(
                f"run directory {checked.run_dir} already exists; run directories are never reused"
            ) from None
        record = {"run_id": run_id, "status": "running", "created_at": manifest.utc_now()}
        reproduces = os.environ.get("TRAINBOX_REPRODUCES", "").strip()
        if reproduces:  # set by `invoke reproduce`: this run re-runs that one
            record["reproduces"] = reproduces
    return Run(config, run_id, checked.run_dir, record, cluster), dataset


def execute(run: Run, dataset: data.Dataset, data_dir: Path, resume: bool, strategy=None) -> float | None:
    config = run.config
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    cluster_record = {
        **run.cluster.record(),
        "per_worker_batch_size": config.training.batch_size,
        "global_batch_size": config.training.batch_size * run.cluster.workers,
    }
    run_dir = run.run_dir
    determinism = set_determinism(config.seed, config.deterministic)
    facts = environment.provenance()
    data_record = {
        "data_dir": str(data_dir),
        "folders": {k: v.relative_to(data_dir.resolve()).as_posix() for k, v in dataset.folders.items()},
        "fingerprint": files.fingerprint(data_dir, dataset.folders),
        "class_names": dataset.class_names,
        "counts": dataset.counts(),
        "image_shape": list(dataset.train.images.shape[1:]),
    }
    record = run.record
    if resume:
        if record.get("data", {}).get("fingerprint") not in (None, data_record["fingerprint"]):
            raise UserError(
                f"--resume {run.run_id}: the data changed since the run started (fingerprint differs)"
            )
        recorded_workers = (record.get("cluster") or {}).get("workers", 1)
        if recorded_workers != run.cluster.workers:
            print(
                f"warning: run {run.run_id} started with {recorded_workers} worker(s), resumed with "
                f"{run.cluster.workers}: the global batch changes, so the result differs",
                flush=True,
            )
        with scope:
            restored, skipped = checkpoint.load_newest(run.checkpoint_dir)
        resume_record = {
            "at": manifest.utc_now(),
            "from_checkpoint": restored.name if restored else None,
            "from_epoch": restored.epoch if restored else 0,
            "skipped_checkpoints": skipped,
            "image": facts["image"],
            "git": facts["git"],
            "environment": facts["environment"],
            "cluster": cluster_record,
        }
        record.setdefault("resumes", []).append(resume_record)
        record["resumed_from"] = resume_record
        record["status"] = "running"
        record.pop("error", None)
    else:
        restored = None
        manifest.write_bytes_atomic(run_dir / "config.yaml", config.to_yaml().encode("utf-8"))
        record.update(
            config=config.to_dict(),
            seed=config.seed,
            determinism=determinism,
            data=data_record,
            epochs_completed=0,
            metrics={},
            cluster=cluster_record,
            **facts,
        )
        record["started_at"] = manifest.utc_now()
    manifest.write_json_atomic(run_dir / "class_names.json", dataset.class_names)
    run.save_manifest()

    if restored is not None:
        model, first_epoch, run.history = restored.model, restored.epoch, restored.history
        print(f"resuming run {run.run_id} from {restored.name} (epoch {first_epoch})", flush=True)
    else:
        with scope:  # variables mirrored on every worker
            model = build_model(config.model, tuple(dataset.train.images.shape[1:]), len(dataset.class_names),
                                config.training.precision)
            compile_model(model, config.training)
        first_epoch = 0
        run.history = []
        if resume:  # killed before the first checkpoint: start over in the same directory
            print(f"resuming run {run.run_id} from the start (no usable checkpoint)", flush=True)
    if not resume:
        model.summary(print_fn=lambda line, **_: print(line, flush=True))

    training = config.training
    if strategy is not None:
        distribute.prepare_model(model, strategy, (dataset.train.images[:1], dataset.train.labels[:1]))
    if first_epoch < training.epochs:
        if strategy is not None:  # global batch = per-worker batch x workers, sharded by worker
            train_data, steps = distribute.training_dataset(
                strategy, run.cluster.workers, dataset.train, training.batch_size, config.seed,
                first_epoch, training.epochs,
            )
        else:
            train_data = data.training_pipeline(
                dataset.train, training.batch_size, config.seed, first_epoch, training.epochs
            )
            steps = data.steps_per_epoch(dataset.train, training.batch_size)
        model.fit(
            train_data,
            epochs=training.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            validation_data=(
                data.eval_pipeline(dataset.validation, training.batch_size)
                if dataset.validation is not None
                else None
            ),
            callbacks=[EpochRecorder(run), *tensorboard_callbacks(run_dir)],
            shuffle=False,  # the pipeline already orders each epoch from (seed, epoch)
            verbose=2,
        )

    test_accuracy = None
    metrics = run.final_metrics()
    if dataset.test is not None:
        results = model.evaluate(
            data.eval_pipeline(dataset.test, training.batch_size), verbose=0, return_dict=True
        )
        test_accuracy = float(results["accuracy"])
        metrics.update(test_accuracy=test_accuracy, test_loss=float(results["loss"]))
    with critical():
        save_model_atomic(model, run_dir / "model.keras")
        plot_learning_curves(run_dir, run.history)
        record["metrics"] = _clean(metrics)
        record["weights_sha256"] = weights_sha256(model)
        record["status"] = "completed"
        record["finished_at"] = manifest.utc_now()
        run.save_manifest()
    return test_accuracy


def mark(run: Run, status: str, **fields) -> None:
    run.record.update(status=status, finished_at=manifest.utc_now(), **fields)
    with contextlib.suppress(OSError):  # e.g. the disk filled up: the exit status still tells
        run.save_manifest()

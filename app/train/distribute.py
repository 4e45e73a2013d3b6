"""Multi-worker training with TensorFlow's own runtime: MultiWorkerMirroredStrategy.

The cluster is described either by `TF_CONFIG` (set per container by `invoke train
--workers N` and the Compose `multiworker` profile) or, in a Slurm job with more than one
task, by Slurm's environment through `tf.distribute.cluster_resolver.SlurmClusterResolver`.

`Cluster` (below) is TF-free: the entry point decides a worker's role before TensorFlow
loads. Worker 0 is the chief: it alone writes the run directory; the others train in a
throwaway directory and read the chief's checkpoints when resuming.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

STRATEGY = "MultiWorkerMirroredStrategy"
SLURM_PORT_BASE = 8888  # SlurmClusterResolver's default; the exported Slurm script sets its own
CPU_NOMINAL_GPUS = 256


@dataclass(frozen=True)
class Cluster:
    workers: int
    index: int
    source: str  # "TF_CONFIG", "slurm" or "single"

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def distributed(self) -> bool:
        return self.workers > 1

    def record(self) -> dict:
        """What the manifest says about the cluster."""
        if not self.distributed:
            return {"workers": 1, "strategy": None}
        return {"workers": self.workers, "strategy": STRATEGY, "resolver": self.source}


def _slurm_tasks(environ) -> int:
    for name in ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"):
        if environ.get(name, "").strip().isdigit():
            return int(environ[name])
    return 1


def detect(environ=None) -> Cluster:
    """The cluster this process belongs to, from TF_CONFIG or Slurm, without TensorFlow."""
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "").strip()
    if raw:
        try:
            spec = json.loads(raw)
            workers = spec["cluster"]["worker"]
            task = spec["task"]
            if task.get("type", "worker") != "worker":
                raise ValueError(f"task type {task.get('type')!r}: only 'worker' tasks are supported")
            index = int(task["index"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"TF_CONFIG is not a worker cluster spec: {error}") from None
        if not 0 <= index < len(workers):
            raise ValueError(f"TF_CONFIG task index {index} is outside the {len(workers)} workers")
        return Cluster(workers=len(workers), index=index, source="TF_CONFIG")
    if environ.get("SLURM_JOB_ID") and _slurm_tasks(environ) > 1:
        return Cluster(
            workers=_slurm_tasks(environ), index=int(environ.get("SLURM_PROCID", "0")), source="slurm"
        )
    return Cluster(workers=1, index=0, source="single")


def make_strategy(cluster: Cluster, slurm_port_base: int | None = None):
    """MultiWorkerMirroredStrategy for a distributed cluster, None for a single worker.

    Must run before any other TensorFlow op: the strategy starts this worker's gRPC server.
    """
    if not cluster.distributed:
        return None
    import tensorflow as tf

    _patch_keras_metric_reduction()
    if cluster.source == "slurm":
        port_base = slurm_port_base or SLURM_PORT_BASE
        gpus = len(tf.config.list_physical_devices("GPU"))  # else the resolver runs nvidia-smi
        slurm_resolver = tf.distribute.cluster_resolver.SlurmClusterResolver
        if gpus:
            resolver = slurm_resolver(port_base=port_base, gpus_per_node=gpus)
        else:
            # CPU nodes: the resolver divides by GPUs per task; give it nominal ones and keep it
            # from setting CUDA_VISIBLE_DEVICES.
            resolver = slurm_resolver(
                port_base=port_base, gpus_per_node=CPU_NOMINAL_GPUS, gpus_per_task=1, auto_set_gpu=False
            )
        # The same spec as TF_CONFIG, so anything reading TF_CONFIG sees the Slurm cluster.
        os.environ["TF_CONFIG"] = json.dumps(
            {
                "cluster": resolver.cluster_spec().as_dict(),
                "task": {"type": resolver.task_type, "index": resolver.task_id},
            }
        )
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    return tf.distribute.MultiWorkerMirroredStrategy()


def strategy_scope(strategy):
    """A fresh scope each time: a distribution strategy's scope cannot be entered twice."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def worker_slice(batch_indices, index: int, workers: int):
    """This worker's part of one global batch: near-equal contiguous slices, in order."""
    size = len(batch_indices)
    return batch_indices[index * size // workers : (index + 1) * size // workers]


def global_batches_per_epoch(examples: int, per_worker_batch: int, workers: int) -> int:
    """Global batches per epoch; a last batch too small to give every worker an example is dropped."""
    global_batch = per_worker_batch * workers
    full, remainder = divmod(examples, global_batch)
    return full + (1 if remainder >= workers else 0)


def training_dataset(
    strategy,
    workers: int,
    split,
    per_worker_batch: int,
    seed: int,
    first_epoch: int,
    epochs: int,
    class_weights=None,
):
    """The remaining epochs as a distributed dataset, and its global batches per epoch.

    Each replica gets its slice of every global batch.

    The order is the single-worker order (a permutation per (seed, epoch)), cut into global
    batches of per_worker_batch x workers; replica r of R takes slice r of each. No auto-sharding:
    every worker computes the same order and keeps its own slices, so a resumed run sees
    exactly the batches it would have seen. Each epoch's slices are computed when the epoch
    starts and read from the decoded-image cache, like the single-worker pipeline.
    """
    import numpy as np
    import tensorflow as tf

    from app.train.data import PREFETCH_BATCHES, lookup, with_class_weights
    from app.train.files import epoch_order

    replicas = strategy.num_replicas_in_sync
    global_batch = per_worker_batch * workers
    steps = global_batches_per_epoch(len(split), per_worker_batch, workers)

    def for_pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        mine = range(context.input_pipeline_id * local, (context.input_pipeline_id + 1) * local)

        def slices(epoch):
            """This pipeline's slices of the epoch's global batches: (positions, slice lengths)."""
            order = epoch_order(seed, int(epoch), len(split))
            parts = [
                worker_slice(order[step * global_batch : (step + 1) * global_batch], replica, replicas)
                for step in range(steps)
                for replica in mine
            ]
            return np.concatenate(parts).astype(np.int32), np.array([len(p) for p in parts], np.int64)

        def epoch_batches(epoch):
            positions, lengths = tf.numpy_function(slices, [epoch], (tf.int32, tf.int64), stateful=False)
            positions.set_shape((None,))
            lengths.set_shape((steps * len(mine),))
            return tf.data.Dataset.from_tensor_slices(tf.RaggedTensor.from_row_lengths(positions, lengths))

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        batches = (
            tf.data.Dataset.range(first_epoch, epochs)
            .flat_map(epoch_batches)
            .map(lookup(split), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        )
        return with_class_weights(batches, class_weights).prefetch(PREFETCH_BATCHES).with_options(options)

    return strategy.distribute_datasets_from_function(for_pipeline), steps


# --- Keras 3.x with MultiWorkerMirroredStrategy: two workarounds -------------------------
# Keras' fit() under MWMS (a) reduces the first data batch with strategy.reduce to build the
# model symbolically, which fails on (x, y) tuples and would consume a batch from our exactly
# counted dataset, and (b) reduces the step's metric logs with reduce("MEAN", axis=0), which
# fails on scalars. Metric variables are all-reduced on every update, so every replica
# already holds the global values: "first" is exact.


def _patch_keras_metric_reduction() -> None:
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "_trainbox", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            reduction = "first"
        return original(values, strategy, reduction)

    reduce_per_replica._trainbox = True
    trainer.reduce_per_replica = reduce_per_replica


def prepare_model(model, strategy, sample_batch) -> None:
    """Build the model's metrics and optimizer under the strategy from a local sample batch."""
    with strategy.scope():
        model._symbolic_build(data_batch=sample_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

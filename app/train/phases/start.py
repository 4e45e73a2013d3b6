"""The start phase: claim the run (after this, its end is recorded whatever happens), then
get its model: built, or restored from the newest checkpoint that loads."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

from app.train import checkpoint, data, distribute, networks, numerics, outputs
from app.train.determinism import set_determinism
from app.train.distribute import strategy_scope
from app.train.errors import UserError
from app.train.model import compile_model
from app.train.phases import records
from app.train.phases.records import StartFacts
from app.train.phases.run import Run
from app.train.preflight import hold_lock
from app.train.signals import critical


def start(run: Run, dataset: data.Dataset, data_dir: Path, strategy, lock: contextlib.ExitStack) -> None:
    """Claim the run (after this, the run's end is recorded whatever happens), then get its model."""
    determinism = set_determinism(run.config.seed, run.config.deterministic)
    facts = records.start_facts(run, dataset, data_dir)
    if run.resuming:
        restored, network = claim_resumed(run, dataset, data_dir, strategy, lock, facts)
    else:
        restored, network = None, claim_new(run, dataset, data_dir, strategy, lock, facts, determinism)
    outputs.write_class_names(run.run_dir, dataset.class_names)
    with strategy_scope(strategy):  # the optimizer's variables mirrored on every worker too
        use_model(run, restored, network)
    if strategy is not None:
        distribute.prepare_model(run.model, strategy, data.sample_batch(dataset.train, 1))


def claim_resumed(
    run: Run, dataset: data.Dataset, data_dir: Path, strategy, lock: contextlib.ExitStack, facts: StartFacts
) -> tuple[checkpoint.Restored | None, networks.Network | None]:
    """The same data, the newest checkpoint that loads (or a new model), a `resumes` entry."""
    records.check_same_data(run, facts.data)
    networks.prepare_loading(run.config)
    network = None
    with strategy_scope(strategy):
        restored, skipped = checkpoint.load_newest(run.checkpoint_dir)
        if restored is None:
            network = build_network(run, dataset, data_dir)
    with critical():
        use_directory(run, lock)
        records.record_resume(run.record, restored, skipped, facts)
        run.save_manifest()
        run.claimed = True
    return restored, network


def claim_new(
    run: Run,
    dataset: data.Dataset,
    data_dir: Path,
    strategy,
    lock: contextlib.ExitStack,
    facts: StartFacts,
    determinism: dict,
) -> networks.Network:
    """The model first, then the run directory, config.yaml, the model's code and the manifest."""
    with strategy_scope(strategy):  # a model that cannot be built stops the run before it is claimed
        network = build_network(run, dataset, data_dir)
    with critical():  # a signal now would leave a directory without a manifest
        use_directory(run, lock)
        outputs.write_config(run.run_dir, run.config)
        networks.save_code(network, run.run_dir)
        run.record = records.new_record(run, facts, determinism)
        run.record.model = network.record
        run.save_manifest()
        run.claimed = True
    return network


def build_network(run: Run, dataset: data.Dataset, data_dir: Path) -> networks.Network:
    """The model config.model names (variables mirrored on every worker in a strategy's scope)."""
    return networks.build(
        run.config, dataset.image_shape, len(dataset.class_names), data_dir, run.launch.keras_cache_host
    )


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

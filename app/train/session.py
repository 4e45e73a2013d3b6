"""`python -m app train`: the checks, the run's phases in order, and how the process ends.

TensorFlow loads only after the cheap checks (config, run directory, data) and the
decoding of the photos into the cache, so a user's mistake costs a second. The run's
lock is held from before the first write to the end.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from typing import TYPE_CHECKING

from app.config import Config
from app.container_env import LaunchFacts
from app.train import distribute, exits, numerics, signals
from app.train.errors import Interrupted, UserError
from app.train.preflight import TrainRequest, preflight

if TYPE_CHECKING:  # app.train.phases imports TensorFlow
    from app.train.phases.run import Run


def train(request: TrainRequest) -> int:
    signals.install()
    run = None
    with contextlib.ExitStack() as lock:  # the run's lock, once taken, until training is over
        try:
            launch, cluster = read_environment()
            checked = preflight(request, lock if cluster.is_chief else None)
            numerics.prepare(checked.config)  # oneDNN reads its variables when TensorFlow loads
            from app.train import data  # no TensorFlow: a bad photo costs seconds, not its start-up

            dataset = data.load_dataset(checked.plan, checked.config.data, request.cache)
            # TensorFlow loads here, after the cheap checks
            from app.train.phases import evaluate, finish, fit, start
            from app.train.phases.run import Run

            strategy = start_tensorflow(cluster, launch, checked.config)
            print(
                f"run {checked.run_id}: {len(dataset.train)} training images, classes {dataset.class_names}",
                flush=True,
            )
            run = Run(checked, cluster, launch)
            start.start(run, dataset, request.data_dir, strategy, lock)
            fit.fit(run, dataset, strategy)
            metrics = evaluate.evaluate(run, dataset)
            finish.finish(run, metrics)
        except (Exception, Interrupted) as error:
            return end(error, run)
    print_run_dir(run)
    if "test_accuracy" in metrics and not launch.launched_by_invoke:
        print(f"test accuracy: {metrics['test_accuracy']:.4f}", flush=True)
    return exits.EXIT_OK


def start_tensorflow(cluster: distribute.Cluster, launch: LaunchFacts, config: Config):
    """Thread pools, then the distribution strategy (None for one worker): before any other op."""
    from app.train import threads

    # pools sized to the container's CPU quota, unless the determinism mode fixes them
    threads.configure(fixed=numerics.pool_size(config, launch.threads))
    strategy = distribute.make_strategy(cluster, launch.slurm_port_base)
    if cluster.distributed:
        print(f"worker {cluster.index} of {cluster.workers} ({cluster.source})", flush=True)
    return strategy


def read_environment() -> tuple[LaunchFacts, distribute.Cluster]:
    """What the launcher set (TRAINBOX_*, TF_CONFIG, Slurm's variables); a bad value is one line."""
    try:
        return LaunchFacts.from_environment(), distribute.detect()
    except ValueError as error:
        raise UserError(str(error)) from None


def end(error: BaseException, run: Run | None) -> int:
    """Record, print and return what exits.py says this error means."""
    claimed = run is not None and run.claimed
    ending = exits.ending_for(error, run.run_id if run is not None else None, claimed)
    if ending.show_traceback:
        traceback.print_exception(error)
    if ending.status is not None:
        run.mark(ending.status, **ending.fields)
    if ending.show_run_dir:
        print_run_dir(run)
    print(f"trainbox: {ending.line}", file=sys.stderr, flush=True)
    return ending.exit_status


def print_run_dir(run: Run) -> None:
    if not run.launch.launched_by_invoke:  # under `invoke train` the host prints the paths the user knows
        print(f"run directory: {run.run_dir}", flush=True)

"""`invoke train --workers N`: one run as N containers (MultiWorkerMirroredStrategy).

The workers share one network namespace (app/launch/group.py), so `TF_CONFIG` names every
worker as 127.0.0.1 with a port of its own (2222, 2223, ...), plus the worker's own index;
worker 0 is the chief and writes the run directory. Running the group is group.py's job;
the run's bookkeeping is app/launch/runs.py's.
"""

from __future__ import annotations

import dataclasses
import json

from app import settings
from app.launch import group
from app.launch.containers import ContainerSpec


def worker_name(run_id: str, index: int) -> str:
    return f"trainbox-train-{run_id}-w{index}"


def worker_address(index: int) -> str:
    """Where worker `index` listens for gRPC, as seen from every worker of the run."""
    return f"{settings.LOCALHOST}:{settings.WORKER_PORT + index}"


def tf_config(workers: int, index: int) -> str:
    hosts = [worker_address(i) for i in range(workers)]
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def worker_specs(spec: ContainerSpec, run_id: str, workers: int) -> list[ContainerSpec]:
    """The single-container spec of the run, once per worker."""
    return [
        dataclasses.replace(
            spec,
            name=worker_name(run_id, index),
            labels={**spec.labels, settings.WORKER_LABEL: str(index)},
            environment={**spec.environment, "TF_CONFIG": tf_config(workers, index)},
        )
        for index in range(workers)
    ]


def run_workers(spec: ContainerSpec, run_id: str, workers: int, echo=print) -> group.Outcome:
    """Run the N workers of a run to the end; the first to fail stops the others."""
    if spec.gpu:
        echo(f"note: each of the {workers} workers is given every GPU of this host")
    echo(f"run {run_id}: {workers} workers in one network namespace of their own (loopback only)")
    members = [
        group.Member(worker, f"[worker {index}] ")
        for index, worker in enumerate(worker_specs(spec, run_id, workers))
    ]
    return group.run_group(members, names=[f"worker {index}" for index in range(workers)], echo=echo)

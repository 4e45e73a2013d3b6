"""`invoke train --workers N`: one run as N containers (MultiWorkerMirroredStrategy).

Each worker gets `TF_CONFIG` naming every worker by its container name (Docker's DNS on
the run's network resolves them) and its own index; worker 0 is the chief and writes the
run directory. Running the group is app/launch/group.py's job; the run's bookkeeping is
app/launch/runs.py's.
"""

from __future__ import annotations

import dataclasses
import json

from app import settings
from app.launch import group
from app.launch.containers import ContainerSpec


def worker_name(run_id: str, index: int) -> str:
    return f"trainbox-train-{run_id}-w{index}"


def network_name(run_id: str) -> str:
    return f"trainbox-run-{run_id}"


def tf_config(run_id: str, workers: int, index: int) -> str:
    hosts = [f"{worker_name(run_id, i)}:{settings.WORKER_PORT}" for i in range(workers)]
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def worker_specs(spec: ContainerSpec, run_id: str, workers: int) -> list[ContainerSpec]:
    """The single-container spec of the run, once per worker."""
    return [
        dataclasses.replace(
            spec,
            name=worker_name(run_id, index),
            labels={**spec.labels, settings.WORKER_LABEL: str(index)},
            environment={**spec.environment, "TF_CONFIG": tf_config(run_id, workers, index)},
        )
        for index in range(workers)
    ]


def run_workers(spec: ContainerSpec, run_id: str, workers: int, echo=print) -> group.Outcome:
    """Run the N workers of a run to the end; the first to fail stops the others."""
    if spec.gpu:
        echo(f"note: each of the {workers} workers is given every GPU of this host")
    echo(f"run {run_id}: {workers} workers on network {network_name(run_id)}")
    members = [
        group.Member(worker, f"[worker {index}] ")
        for index, worker in enumerate(worker_specs(spec, run_id, workers))
    ]
    return group.run_group(
        members,
        network_name(run_id),
        labels={settings.RUN_ID_LABEL: run_id},
        names=[f"worker {index}" for index in range(workers)],
        echo=echo,
    )

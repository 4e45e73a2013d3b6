"""`invoke train --workers N`: N containers of one run on a private Docker network made for it.

Each worker gets `TF_CONFIG` naming every worker by its container name (Docker's DNS on a
user-defined network resolves them) and its own index; worker 0 is the chief and writes the
run directory. Logs of all workers are streamed with a `[worker i]` prefix. When a worker
exits non-zero the others are stopped, so nobody waits forever in a collective; the network
and every container are removed at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import threading
import time

import docker.errors

from app.launch import containers
from app.launch.engine import client
from app.launch.errors import TrainboxError, describe_docker_error, docker_errors
from app.launch.images import PROJECT_LABEL

WORKER_PORT = 2222
POLL_S = 0.5


def worker_name(run_id: str, index: int) -> str:
    return f"trainbox-train-{run_id}-w{index}"


def tf_config(run_id: str, workers: int, index: int) -> str:
    hosts = [f"{worker_name(run_id, i)}:{WORKER_PORT}" for i in range(workers)]
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def worker_specs(spec: containers.ContainerSpec, run_id: str, workers: int) -> list[containers.ContainerSpec]:
    """The single-container spec of the run, once per worker."""
    return [
        dataclasses.replace(
            spec,
            name=worker_name(run_id, index),
            labels={**spec.labels, "trainbox.worker": str(index)},
            environment={**spec.environment, "TF_CONFIG": tf_config(run_id, workers, index)},
        )
        for index in range(workers)
    ]


def _stream(container, prefix: str, lock: threading.Lock) -> None:
    """Follow one container's output, line by line, each line prefixed."""
    pending = b""
    try:
        for chunk in container.logs(stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            with lock:
                for line in lines:
                    sys.stdout.buffer.write(prefix.encode() + line + b"\n")
                sys.stdout.flush()
    except docker.errors.DockerException:
        pass  # the container was removed under us: its exit status tells what happened
    if pending:
        with lock:
            sys.stdout.buffer.write(prefix.encode() + pending + b"\n")
            sys.stdout.flush()


def _status(container) -> int | None:
    """The exit status once the container has exited, else None."""
    container.reload()
    if container.status in ("exited", "dead"):
        return container.attrs["State"]["ExitCode"]
    return None


def _stop_all(running, echo) -> None:
    threads = [threading.Thread(target=_stop_quietly, args=(c,)) for c in running]
    if running:
        echo(f"stopping {', '.join(c.name for c in running)} (up to {containers.STOP_TIMEOUT_S} s) ...")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _stop_quietly(container) -> None:
    with contextlib.suppress(docker.errors.DockerException):
        container.stop(timeout=containers.STOP_TIMEOUT_S)


def run_cluster(
    spec: containers.ContainerSpec, run_id: str, workers: int, echo=print
) -> tuple[int, str | None]:
    """Run the workers to the end; (exit status, why the cluster stopped early or None).

    The status is the first failing worker's (or 130 when the user interrupted), else 0.
    """
    engine = client()
    with docker_errors():
        _remove_stale_network(engine, f"trainbox-run-{run_id}")
        network = engine.networks.create(
            f"trainbox-run-{run_id}", driver="bridge", internal=True,  # workers talk to each other only
            labels={PROJECT_LABEL: "trainbox", "trainbox.run_id": run_id},
        )
    started = []
    lock = threading.Lock()
    streams = []
    failure = None
    status = 0
    try:
        with containers._sigterm_as_exception():
            try:
                for index, worker in enumerate(worker_specs(spec, run_id, workers)):
                    started.append(_start_on(worker, network.name))
                    thread = threading.Thread(
                        target=_stream, args=(started[-1], f"[worker {index}] ", lock), daemon=True
                    )
                    thread.start()
                    streams.append(thread)
                status, failure = _wait(started, echo)
            except (KeyboardInterrupt, containers._Terminated):
                echo("\ninterrupted")
                _stop_all([c for c in started if _status(c) is None], echo)
                status, failure = containers.EXIT_INTERRUPTED, "interrupted by the user"
            for thread in streams:
                thread.join(timeout=5)
    except docker.errors.DockerException as error:
        raise TrainboxError(describe_docker_error(error)) from None
    finally:
        with docker_errors():
            for container in started:
                containers.remove_quietly(container)
            _remove_network(network)
    return status, failure


def _start_on(spec: containers.ContainerSpec, network: str):
    kwargs = containers.run_kwargs(spec)
    del kwargs["detach"]
    kwargs["network"] = network
    kwargs["hostname"] = spec.name
    container = client().containers.create(**kwargs)
    try:
        container.start()
    except BaseException:
        containers.remove_quietly(container)
        raise
    return container


def _wait(started, echo) -> tuple[int, str | None]:
    """Poll until every worker exited; the first to fail brings the others down."""
    exited: dict[int, int] = {}
    failure = None
    first_failed = None
    while len(exited) < len(started):
        for index, container in enumerate(started):
            if index in exited:
                continue
            code = _status(container)
            if code is None:
                continue
            exited[index] = code
            if code != 0 and first_failed is None:
                first_failed = index
                failure = f"worker {index} exited with status {code}"
                echo(f"{failure}: stopping the other workers")
                _stop_all([c for i, c in enumerate(started) if i not in exited], echo)
        if len(exited) < len(started):
            time.sleep(POLL_S)
    if first_failed is not None:
        return exited[first_failed], failure
    return 0, None


def _remove_stale_network(engine, name: str) -> None:
    """A network left by an invoke that was SIGKILLed (its containers are gone: resume checked)."""
    for network in engine.networks.list(names=[name], filters={"label": f"{PROJECT_LABEL}=trainbox"}):
        if network.name == name:
            _remove_network(network)


def _remove_network(network) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        network.remove()


def train_cluster(spec: containers.ContainerSpec, run_id: str, workers: int, run_dir, echo=print) -> int:
    """`invoke train --workers N` after the host checks: run, mark an unrecorded end, report."""
    from app.launch import training

    if spec.gpu:
        echo(f"note: each of the {workers} workers is given every GPU of this host")
    echo(f"run {run_id}: {workers} workers on network trainbox-run-{run_id}")
    try:
        status, failure = run_cluster(spec, run_id, workers, echo=echo)
    except TrainboxError as error:
        training.record_unrecorded_end(run_dir, error.exit_code, reason=str(error))
        raise
    training.record_unrecorded_end(run_dir, status)
    if failure:
        note_failure(run_dir, failure)
    training.report_run(run_dir, echo)
    if failure and status != containers.EXIT_INTERRUPTED:
        echo(f"trainbox: {failure}; continue with: invoke train --resume {run_id}")
    return status


def note_failure(run_dir, failure: str) -> None:
    """Say in the manifest why the cluster stopped (the chief only knew it was stopped)."""
    from app import manifest

    try:
        record = manifest.read_manifest(run_dir)
        if record is None or record.get("status") == "completed":
            return
        record["cluster_failure"] = failure
        manifest.write_manifest(run_dir, record)
    except (OSError, ValueError):
        pass

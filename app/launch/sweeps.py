"""`invoke sweep FILE`: every trial an ordinary run, N at a time, resumable after a crash.

The sweep's state is written once, atomically, before the first trial starts:
`<output dir>/sweeps/<sweep id>/sweep.json` (each trial's number, run id and values) and
`trial-NN.yaml` (each trial's resolved config). Whether a trial is done is read from its
run's manifest, never from the state file: `--resume SWEEP_ID` skips completed trials,
resumes the others with `invoke train --resume` and starts those that never began.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from app import manifest, run_lock, settings
from app.config import ConfigError
from app.launch import containers, images, runs, sweep_results, training
from app.launch.errors import TrainboxError, UsageError, boundary
from app.launch.folders import resolve_dir
from app.launch.sweep_spec import SweepSpec, load_spec, trial_configs
from app.manifest import Status

STATE_NAME = "sweep.json"


@dataclass(frozen=True)
class SweepRequest:
    sweep_file: str
    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    parallel: int = 1
    resume: str | None = None
    data_dir: str | None = None
    output_dir: str | None = None
    cache_dir: str | None = None
    image: str | None = None
    limits: containers.Limits = field(default_factory=containers.Limits)


def sweep_dir(output_dir: Path, sweep_id: str) -> Path:
    return output_dir / settings.SWEEPS_DIR_NAME / sweep_id


def cpus_per_trial(limits: containers.Limits, parallel: int) -> float | None:
    """Each of N trials at once gets 1/N of --cpus (of the host's cores without it); one at a
    time without --cpus runs unlimited, as `invoke train` does."""
    if parallel == 1 and limits.cpus is None:
        return None
    return (limits.cpus or os.cpu_count() or 1) / parallel


def write_trials(folder: Path, spec: SweepSpec, trials: list, **facts) -> dict:
    """The sweep's folder (named by its id): one resolved config per trial, then the state."""
    folder.mkdir(parents=True)
    state = {"sweep_id": folder.name, **facts, "spec": spec.to_dict(), "created_at": manifest.utc_now()}
    state["trials"] = []
    for number, (params, config) in enumerate(trials, start=1):
        config_name = f"trial-{number:02d}.yaml"
        manifest.write_bytes_atomic(folder / config_name, config.to_yaml().encode("utf-8"))
        run_id = f"{folder.name}-trial{number:02d}"
        state["trials"].append({"trial": number, "run_id": run_id, "params": params, "config": config_name})
    manifest.write_json_atomic(folder / STATE_NAME, state)
    return state


def _create(request: SweepRequest, spec: SweepSpec, output_dir: Path, echo) -> dict:
    base_request = training.TrainRequest(
        config_file=request.config_file,
        overrides=request.overrides,
        data_dir=request.data_dir,
        output_dir=request.output_dir,
        image=request.image,
    )
    _, base = training.load_request_config(base_request, output_dir)
    trials = trial_configs(spec, base, f"sweep {request.sweep_file}")  # all checked before any starts
    training.prepare(base_request, echo)  # the data, checked (the default data written when missing)
    state = write_trials(
        sweep_dir(output_dir, manifest.new_run_id()),
        spec,
        trials,
        file=str(request.sweep_file),
        cpus_per_trial=cpus_per_trial(request.limits, request.parallel),
    )
    sweep_id = state["sweep_id"]
    echo(f"sweep {sweep_id}: {len(trials)} trials of {', '.join(spec.swept_keys)}")
    return state


def _load(request: SweepRequest, spec: SweepSpec, output_dir: Path, echo) -> dict:
    sweep_id = request.resume
    if request.config_file or request.overrides:
        raise UsageError("--resume continues a sweep with its own trial configs: drop --config/--set")
    if not manifest.is_valid_run_id(sweep_id):
        raise UsageError(f"--resume {sweep_id!r} is not a sweep id like 20261125-180512-3fa9c2")
    path = sweep_dir(output_dir, sweep_id) / STATE_NAME
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--resume {sweep_id}: no such sweep in {output_dir}") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume {sweep_id}: cannot read {path}: {error}") from None
    if state.get("spec") != spec.to_dict():
        raise UsageError(
            f"--resume {sweep_id}: {request.sweep_file} is not the file that sweep was started with"
        )
    check_nothing_running(state, output_dir)
    share = cpus_per_trial(request.limits, request.parallel)
    if share != state.get("cpus_per_trial"):
        echo(
            f"warning: sweep {sweep_id} started with {state.get('cpus_per_trial') or 'unlimited'} CPUs per "
            f"trial, resumed with {share or 'unlimited'}: resumed trials' weights differ (give the same "
            "--cpus and --parallel)"
        )
    return state


def check_nothing_running(state: dict, output_dir: Path) -> None:
    """Refuse (one line) to resume a sweep while one of its trials is still being written:
    after a SIGKILL of invoke its container trains on, unwatched."""
    for trial in state["trials"]:
        record = runs.read_record(output_dir / trial["run_id"], f"trial {trial['trial']}")
        if record is not None and record.get("status") != Status.COMPLETED:
            runs.resumable_run_dir(output_dir, trial["run_id"])


def _trial_request(
    request: SweepRequest, state: dict, trial: dict, output_dir: Path
) -> training.TrainRequest | None:
    """How to run the trial now: start it, resume it, or None when it already completed."""
    run_dir = output_dir / trial["run_id"]
    try:
        record = manifest.read_manifest(run_dir)
    except ValueError as error:
        raise TrainboxError(f"trial {trial['trial']}: {error}") from None
    share = cpus_per_trial(request.limits, request.parallel)
    common = training.TrainRequest(
        data_dir=request.data_dir,
        output_dir=str(output_dir),
        cache_dir=request.cache_dir,
        image=request.image,
        limits=replace(request.limits, cpus=share),
    )
    if record is not None:
        if record.get("status") == Status.COMPLETED:
            return None
        return replace(common, resume=trial["run_id"])
    if run_dir.exists() and run_lock.holder(run_dir) is None:
        shutil.rmtree(run_dir)  # made by a container killed before it wrote a manifest: never began
    config_file = sweep_dir(output_dir, state["sweep_id"]) / trial["config"]
    return replace(
        common,
        config_file=str(config_file),
        run_id=trial["run_id"],
        sweep=(state["sweep_id"], trial["trial"]),
    )


def _run_trial(request: SweepRequest, state: dict, trial: dict, output_dir: Path, stopping, echo) -> int:
    if stopping.is_set():
        return containers.EXIT_INTERRUPTED
    label = f"trial {trial['trial']} ({trial['run_id']})"
    try:
        with boundary():
            train_request = _trial_request(request, state, trial, output_dir)
            if train_request is None:
                echo(f"{label}: completed, skipped")
                return 0
            echo(f"{label}: {'resuming' if train_request.resume else 'starting'} {trial['params']}")
            return training.train(train_request, echo=echo)
    except TrainboxError as error:
        echo(f"{label}: trainbox: {error}")
        return error.exit_code


def _stop_trials(state: dict, echo) -> None:
    echo("\nstopping the running trials ...")
    for trial in state["trials"]:
        for container in runs.run_containers(trial["run_id"]):
            containers.stop(container)


def run_trials(request: SweepRequest, state: dict, output_dir: Path, echo) -> list[int]:
    """Every trial's exit status; Ctrl-C/SIGTERM stops the running ones (they record it)."""
    stopping = threading.Event()
    trials = state["trials"]
    if request.parallel == 1:
        statuses = []
        for trial in trials:
            statuses.append(_run_trial(request, state, trial, output_dir, stopping, echo))
            if statuses[-1] == containers.EXIT_INTERRUPTED:
                stopping.set()
        return statuses
    with containers.interruptible(), concurrent.futures.ThreadPoolExecutor(request.parallel) as pool:
        futures = [pool.submit(_run_trial, request, state, t, output_dir, stopping, echo) for t in trials]
        try:
            concurrent.futures.wait(futures)
        except KeyboardInterrupt:
            stopping.set()
            _stop_trials(state, echo)
        return [future.result() for future in futures]


def sweep(request: SweepRequest, echo=print) -> int:
    """Run (or resume) a sweep; exit 0 when every trial completed."""
    if request.parallel < 1:
        raise UsageError(f"--parallel {request.parallel}: give 1 or more")
    try:
        spec = load_spec(request.sweep_file)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    output_dir = resolve_dir(request.output_dir, settings.DEFAULT_OUTPUT_DIR)
    containers.check_engine_supports(False, request.limits)
    if request.resume:
        state = _load(request, spec, output_dir, echo)
    else:
        try:
            state = _create(request, spec, output_dir, echo)
        except ConfigError as error:
            raise UsageError(str(error)) from None
    images.ensure_image(tag=request.image, echo=echo)  # once, before trials start side by side
    statuses = run_trials(request, state, output_dir, echo)
    if containers.EXIT_INTERRUPTED not in statuses:  # stopped by the user: no plot container now
        folder = sweep_dir(output_dir, state["sweep_id"])
        sweep_results.report(state, spec, output_dir, folder, request.image, echo)
    failed = next((status for status in statuses if status != 0), 0)
    if failed:
        echo(f"continue with: invoke sweep {request.sweep_file} --resume {state['sweep_id']}")
    return failed

"""`invoke reproduce RUN_ID`: re-run a recorded run in its own image and compare the results.

The recorded image (by id) carries the training code and the package set; the recorded
commit must be checked out (clean) so the host side and the config schema match too. An
engine without that image rebuilds it from the commit, or loads it from an exported
tarball (app/launch/rebuild.py).
Exit status 1 means "differs"; a run that cannot be re-run at all is a usage error (2).
The re-run gets the recorded numerics back (thread pools, oneDNN ISA; a portable run pins
them itself); what this host cannot give it is said before it starts, and when the weights
differ the recorded numerics that differ are named with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app import manifest, numerics, settings
from app.launch import images, rebuild, runs, training
from app.launch.comparison import compare
from app.launch.errors import TrainboxError, UsageError
from app.launch.folders import resolve_dir
from app.launch.provenance import git_state
from app.manifest import Status

RESULT_FILE = "reproduction.json"


@dataclass(frozen=True)
class ReproduceRequest:
    run_id: str
    output_dir: str | None = None
    data_dir: str | None = None
    image_archive: str | None = None  # a `docker save` tarball holding the run's image


def reproduce(request: ReproduceRequest, echo=print) -> int:
    """Exit status: 0 identical, 1 differs, or the re-run's own status when it did not finish."""
    output_dir = resolve_dir(request.output_dir, settings.DEFAULT_OUTPUT_DIR)
    run_dir, record = recorded_run(output_dir, request.run_id)
    check_code(record, request.run_id, echo)
    image_id = check_image(record, request.run_id, request.image_archive, echo)

    recorded_numerics = record.get("numerics")
    host = host_numerics()
    for line in numerics.cannot_replay(recorded_numerics, host):
        echo(f"note: this host cannot replay run {request.run_id} exactly: {line}")
    new_id = manifest.new_run_id()
    echo(f"reproducing {request.run_id} as {new_id} in {image_id[:19]}")
    status = training.train(
        training.TrainRequest(
            config_file=str(run_dir / "config.yaml"),
            gpu=record.get("environment", {}).get("variant") == "gpu",
            data_dir=request.data_dir,
            output_dir=str(output_dir),
            image=image_id,
            run_id=new_id,
            reproduces=request.run_id,
            replay=numerics.replay(recorded_numerics, host["cpu_isa_flags"]),
        ),
        echo=echo,
    )
    new_record = runs.read_record(output_dir / new_id, "the re-run")
    if status != 0 or not new_record or new_record.get("status") != Status.COMPLETED:
        state = (new_record or {}).get("status", "no manifest")
        raise TrainboxError(
            f"the re-run {new_id} did not complete ({state}, exit {status}): nothing to compare",
            exit_code=status or 1,
        )
    differences = compare(record, new_record)
    manifest.write_json_atomic(
        output_dir / new_id / RESULT_FILE,
        {"reproduces": request.run_id, "identical": not differences, "differences": differences},
    )
    if new_record.get("image", {}).get("id") != record["image"]["id"]:
        echo(f"note: the re-run ran in {image_id[:19]}, not the recorded {record['image']['id'][:19]}")
    if not differences:
        echo(f"identical: {new_id} reproduces {request.run_id} (weights_sha256 {record['weights_sha256']})")
        return 0
    echo(f"differs: {new_id} does not reproduce {request.run_id}:")
    for line in differences:
        echo(f"  {line}")
    return 1


def host_numerics() -> dict:
    """This host's CPU (a container sees the same) and whether it has an NVIDIA driver."""
    return {
        **numerics.cpu_facts(numerics.read_cpuinfo()),
        "gpu": Path("/proc/driver/nvidia/version").exists(),
    }


def recorded_run(output_dir: Path, run_id: str) -> tuple[Path, dict]:
    run_dir, record = runs.find_run(output_dir, run_id)
    if record.get("status") != Status.COMPLETED or not record.get("weights_sha256"):
        raise UsageError(
            f"run {run_id} is {record.get('status')}, not completed: finish it first "
            f"(invoke train --resume {run_id})"
        )
    if not (run_dir / "config.yaml").is_file():
        raise UsageError(f"run {run_id} has no config.yaml in {run_dir}: it cannot be re-run")
    if not images.is_image_id(str((record.get("image") or {}).get("id", ""))):
        raise UsageError(f"run {run_id} recorded no image id: it cannot be re-run in its image")
    return run_dir, record


def check_image(record: dict, run_id: str, archive: str | None = None, echo=print) -> str:
    """The id of the image to re-run in: the recorded one, loaded from `archive` when given
    and missing, or rebuilt from the run's commit when its lock and code hashes match."""
    image_id = record["image"]["id"]
    if images.find(image_id) is not None:
        return image_id
    if archive is not None:
        return rebuild.load_archive(archive, record, run_id, echo=echo).id
    return rebuild.rebuild(record, run_id, echo=echo).id


def check_code(record: dict, run_id: str, echo=print) -> None:
    git = record.get("git") or {}
    recorded = git.get("commit") or "unknown"
    if recorded == "unknown":
        raise UsageError(f"run {run_id} recorded no git commit: its code cannot be checked out")
    current = git_state()
    if current.commit != recorded:
        raise UsageError(
            f"run {run_id} was made at commit {recorded[:12]}, HEAD is {current.commit[:12]}: "
            f"`git checkout {recorded}` and run `invoke reproduce {run_id}` again"
        )
    if current.dirty:
        raise UsageError(
            f"the work tree has uncommitted changes: commit or stash them (run {run_id} was made "
            f"at commit {recorded[:12]})"
        )
    if git.get("dirty"):
        echo(
            f"note: run {run_id} was made from uncommitted changes on {recorded[:12]}; "
            "its image still carries that code"
        )

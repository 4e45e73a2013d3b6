"""What the manifest says when a run is claimed: the facts gathered at its start, a new
run's record, a resume's entry; and the check that a resume reads the same data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app import manifest
from app.container_env import ImageFacts
from app.manifest import RunRecord, Status
from app.train import data, environment, numerics
from app.train.errors import UserError
from app.train.phases.run import Run


@dataclass(frozen=True)
class StartFacts:
    """Gathered once per start; recorded in a new run's manifest or in a resume's entry."""

    provenance: dict  # environment (image, code, versions, packages) and numerics
    data: dict
    cluster: dict


def start_facts(run: Run, dataset: data.Dataset, data_dir: Path) -> StartFacts:
    config = run.config
    provenance = {
        **environment.provenance(run.launch, ImageFacts.from_environment()),
        "numerics": numerics.record(config),
    }
    data_record = describe_data(dataset, data_dir)
    cluster_record = {
        **run.cluster.record(),
        "per_worker_batch_size": config.training.batch_size,
        "global_batch_size": config.training.batch_size * run.cluster.workers,
    }
    return StartFacts(provenance=provenance, data=data_record, cluster=cluster_record)


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


def new_record(run: Run, facts: StartFacts, determinism: dict) -> RunRecord:
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
        data=facts.data,
        epochs_completed=0,
        metrics={},
        cluster=facts.cluster,
        **facts.provenance,
        started_at=now,
    )


def record_resume(record: RunRecord, restored, skipped: list[dict], facts: StartFacts) -> None:
    entry = {
        "at": manifest.utc_now(),
        "from_checkpoint": restored.name if restored else None,
        "from_epoch": restored.epoch if restored else 0,
        "skipped_checkpoints": skipped,
        **facts.provenance,
        "cluster": facts.cluster,
    }
    record.resumes = [*(record.resumes or []), entry]
    record.resumed_from = entry
    record.status = Status.RUNNING
    record.forget("error")

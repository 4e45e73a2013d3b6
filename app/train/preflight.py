"""Everything a user can get wrong, checked before TensorFlow is imported or a run dir exists."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from app import manifest
from app.config import Config
from app.train.errors import UserError
from app.train.files import Plan, plan_dataset


@dataclass
class Preflight:
    run_dir: Path
    record: dict | None  # the existing manifest when resuming
    plan: Plan


def check_output_dir(output_dir: Path) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UserError(f"output directory {output_dir} is not writable: {error.strerror or error}") from None


def preflight(config: Config, data_dir: Path, output_dir: Path, run_id: str, resume: bool) -> Preflight:
    if not manifest.is_valid_run_id(run_id):
        raise UserError(f"run id {run_id!r} is not a safe folder name (letters, digits, '-', '_', '.')")
    run_dir = output_dir / run_id
    record = None
    if resume:
        try:
            record = manifest.read_manifest(run_dir)
        except ValueError as error:
            raise UserError(f"--resume {run_id}: {error}") from None
        if record is None:
            raise UserError(f"--resume {run_id}: no such run in {output_dir}")
        if record.get("status") == "completed":
            raise UserError(f"--resume {run_id}: that run already completed; start a new one")
        check_output_dir(run_dir)
    else:
        check_output_dir(output_dir)
        if run_dir.exists():
            raise UserError(f"run directory {run_dir} already exists; run directories are never reused")
    return Preflight(run_dir, record, plan_dataset(data_dir, config.data, config.seed))

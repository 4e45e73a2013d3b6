"""`invoke runs`: one line per run directory, newest first, and `--compare A B` side by side.

Read-only: manifests through app/manifest.py, the writer through app/run_lock.py. A folder
that is not a run (no manifest, a manifest that does not parse) is a row that says so.
"""

from __future__ import annotations

import calendar
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from app import manifest, run_lock, settings
from app.config import changed_from_defaults
from app.launch import comparison
from app.launch.errors import UsageError
from app.manifest import RunRecord, Status

CORRUPT, FOREIGN, ABANDONED = "corrupt", "not a run", "abandoned"


@dataclass(frozen=True)
class RunRow:
    run_id: str
    status: str
    started: str | None = None
    duration_s: int | None = None
    epochs: str | None = None
    test_accuracy: float | None = None
    commit: str | None = None
    image: str | None = None
    sweep: str | None = None
    changed: dict | None = None
    problem: str | None = None  # why a folder is not a readable run


def _seconds(stamp: str | None) -> int | None:
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) if stamp else None
    except ValueError:
        return None


def live_status(record: RunRecord, writer: str | None) -> str:
    """`running` only while a writer holds the run; a `running` manifest nobody writes was abandoned
    (its invoke or container was killed before it could record the end)."""
    if writer:
        return Status.RUNNING.value
    return ABANDONED if record.status == Status.RUNNING else record.status.value


def _duration(record: RunRecord, status: str) -> int | None:
    start = _seconds(record.started_at or record.created_at)
    end = time.time() if status == Status.RUNNING else _seconds(record.finished_at or record.updated_at)
    return None if start is None or end is None else max(0, int(end - start))


def row_of(run_dir: Path, record: RunRecord) -> RunRow:
    status = live_status(record, run_lock.holder(run_dir))
    config = record.config or {}
    planned = (config.get("training") or {}).get("epochs")
    git = record.git
    return RunRow(
        run_id=run_dir.name,
        status=status,
        started=record.started_at or record.created_at,
        duration_s=_duration(record, status),
        epochs=f"{record.epochs_completed}/{planned if planned is not None else '?'}",
        test_accuracy=(record.metrics or {}).get("test_accuracy"),
        commit=None if git is None else git.commit[:10] + ("+dirty" if git.dirty else ""),
        image=None if record.image is None else record.image.id.removeprefix("sha256:")[:12],
        sweep=None if record.sweep is None else f"{record.sweep.id}#{record.sweep.trial}",
        changed=changed_from_defaults(config),
    )


def read_row(run_dir: Path) -> RunRow:
    try:
        record = manifest.read_record(run_dir)
    except ValueError as error:
        return RunRow(run_id=run_dir.name, status=CORRUPT, problem=str(error))
    if record is None:
        return RunRow(run_id=run_dir.name, status=FOREIGN, problem=f"no {manifest.MANIFEST_NAME}")
    return row_of(run_dir, record)


def _is_candidate(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and path.name != settings.SWEEPS_DIR_NAME


def list_runs(output_dir: Path) -> list[RunRow]:
    """Every folder of the output directory as a row, newest first (by start, else by name)."""
    if not output_dir.is_dir():
        raise UsageError(f"output directory not found: {output_dir}: pass --output-dir")
    rows = [read_row(path) for path in sorted(output_dir.iterdir()) if _is_candidate(path)]
    return sorted(rows, key=lambda row: (row.started or "", row.run_id), reverse=True)


def _duration_text(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _changed_text(changed: dict | None) -> str:
    return " ".join(f"{key}={json.dumps(value)}" for key, value in (changed or {}).items()) or "-"


HEADER = ("RUN", "STATUS", "STARTED", "TOOK", "EPOCHS", "TEST ACC", "COMMIT", "IMAGE", "SWEEP", "CHANGED")


def _cells(row: RunRow) -> tuple[str, ...]:
    if row.problem:
        return (row.run_id, row.status, "-", "-", "-", "-", "-", "-", "-", row.problem)
    accuracy = "-" if row.test_accuracy is None else f"{row.test_accuracy:.4f}"
    return (
        row.run_id,
        row.status,
        (row.started or "-").replace("T", " ").removesuffix("Z"),
        _duration_text(row.duration_s),
        row.epochs or "-",
        accuracy,
        row.commit or "-",
        row.image or "-",
        row.sweep or "-",
        _changed_text(row.changed),
    )


def table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)), cells[-1]])
        for cells in [header, *lines]
    ]


def show_runs(output_dir: Path, as_json: bool = False, echo=print) -> None:
    rows = list_runs(output_dir)
    if as_json:
        echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    if not rows:
        echo(f"no runs in {output_dir}")
        return
    for line in table(HEADER, [_cells(row) for row in rows]):
        echo(line)


def _record(output_dir: Path, run_id: str) -> dict:
    if not manifest.is_valid_run_id(run_id):
        raise UsageError(f"--compare {run_id!r} is not a run id like 20261125-180512-3fa9c2")
    try:
        record = manifest.read_manifest(output_dir / run_id)
    except ValueError as error:
        raise UsageError(f"--compare {run_id}: {error}") from None
    if record is None:
        raise UsageError(
            f"--compare {run_id}: no such run in {output_dir}: pass --output-dir if it is elsewhere"
        )
    return record


def _short(value) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 28 else text[:27] + "…"


def two_runs(values: list[str]) -> tuple[str, str]:
    """`--compare A,B` (or `--compare A --compare B`) as the two run ids."""
    ids = [part for value in values for part in value.replace(",", " ").split()]
    if len(ids) != 2:
        raise UsageError(f"--compare takes two run ids, got {len(ids)}: invoke runs --compare A,B")
    return ids[0], ids[1]


def compare_runs(output_dir: Path, values: list[str], as_json: bool = False, echo=print) -> None:
    """The two manifests side by side (differences marked) and whether they are comparable."""
    first, second = two_runs(values)
    old, new = _record(output_dir, first), _record(output_dir, second)
    rows = comparison.rows(old, new)
    reasons = comparison.comparability(old, new)
    if as_json:
        facts = [{"label": r.label, first: r.before, second: r.after, "same": r.same} for r in rows]
        echo(
            json.dumps({"rows": facts, "comparable": not reasons, "reasons": reasons}, indent=2, default=str)
        )
        return
    lines = [(row.label, _short(row.before), _short(row.after), "" if row.same else "*") for row in rows]
    for line in table(("", first, second, "DIFFERS"), lines):
        echo(line.rstrip())
    if reasons:
        echo(f"not comparable: {', '.join(reasons)}")
    else:
        echo("comparable: same data, image and code")

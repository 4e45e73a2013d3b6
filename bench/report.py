"""What a run of the suite leaves: the table it prints and the record in results.json."""

from __future__ import annotations

import dataclasses
import os
import platform
from datetime import UTC, datetime

from bench.figure import Figure
from bench.step import Plan


def machine(client) -> dict:
    info = client.info()
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(info.get("MemTotal", 0) / 2**30, 1),
        "docker": client.version().get("Version"),
        "storage_driver": info.get("Driver"),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def busy(client) -> dict:
    """How loaded the shared machine was: read the figures together with this."""
    others = [c.name for c in client.containers.list()]
    return {"load_average": [round(x, 2) for x in os.getloadavg()], "running_containers": others}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "goal", "met", "baseline (same run)", "spread (min-max)", "n")]
    for f in figures:
        met = {True: "yes", False: "NO", None: ""}[f.meets_goal]
        baseline = f"{_number(f.baseline.value)} {f.baseline.label}" if f.baseline else "-"
        spread = f"{_number(f.spread[0])}-{_number(f.spread[1])}" if f.spread else _shorten(f.reason or "-")
        rows.append((f.name, _number(f.value), str(f.goal or ""), met, baseline, spread, str(len(f.samples))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """Everything the record needs besides the figures."""

    plan: Plan
    steps: list[str]
    seconds: float
    machine: dict
    busy_before: dict
    busy_after: dict
    notes: list[str]
    errors: list[str]


def record(figures: list[Figure], run: Run) -> dict:
    """results.json: every figure's value at the top level (a number, or null plus
    `<name>_reason`), and under `figures` its samples, spread, goal and baseline."""
    top = {}
    for figure in figures:
        top[figure.name] = figure.value
        if figure.reason:
            top[f"{figure.name}_reason"] = figure.reason
    return {
        **top,
        "mode": run.plan.mode,
        "plan": dataclasses.asdict(run.plan),
        "steps": run.steps,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(run.seconds, 1),
        "machine": run.machine,
        "busy_before": run.busy_before,
        "busy_after": run.busy_after,
        "notes": run.notes,
        "errors": run.errors,
        "figures": {figure.name: figure.record() for figure in figures},
    }

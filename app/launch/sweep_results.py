"""The end of a sweep: its trials sorted by the metric (a table and results.json) and a PNG
of the metric against each swept key, drawn in the image (the host has no matplotlib)."""

from __future__ import annotations

import json

from app import manifest, settings
from app.launch import containers, images
from app.launch.errors import TrainboxError
from app.launch.run_table import table
from app.launch.sweep_spec import SweepSpec
from app.manifest import Status

RESULTS_NAME = "results.json"


def trial_results(state: dict, spec: SweepSpec, output_dir) -> list[dict]:
    """One entry per trial, best first by the metric; trials without it last, in trial order."""
    found = []
    for trial in state["trials"]:
        try:
            record = manifest.read_manifest(output_dir / trial["run_id"]) or {}
            status = record.get("status", "not started")
        except ValueError:
            record, status = {}, "corrupt"
        value = (record.get("metrics") or {}).get(spec.metric) if status == Status.COMPLETED else None
        found.append(
            {**trial, "status": status, spec.metric: value, "weights_sha256": record.get("weights_sha256")}
        )
    sign = -1 if spec.goal == "maximize" else 1
    return sorted(found, key=lambda r: (r[spec.metric] is None, sign * (r[spec.metric] or 0), r["trial"]))


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if value is not None else "-"


def report(state: dict, spec: SweepSpec, output_dir, folder, image: str | None, echo=print) -> None:
    results = trial_results(state, spec, output_dir)
    header = ("TRIAL", "RUN", "STATUS", spec.metric.upper(), *spec.swept_keys)
    lines = [
        (
            str(r["trial"]),
            r["run_id"],
            str(r["status"]),
            _cell(r[spec.metric]),
            *(_cell(r["params"].get(key)) for key in spec.swept_keys),
        )
        for r in results
    ]
    echo(f"sweep {state['sweep_id']}, by {spec.metric} ({spec.goal}):")
    for line in table(header, lines):
        echo(line)
    log_keys = [
        key for key, value in spec.random.items() if isinstance(value, dict) and "log_uniform" in value
    ]
    payload = {
        "sweep_id": state["sweep_id"],
        "metric": spec.metric,
        "goal": spec.goal,
        "keys": spec.swept_keys,
        "log_keys": log_keys,
        "trials": results,
    }
    manifest.write_json_atomic(folder / RESULTS_NAME, payload)
    if any(r[spec.metric] is not None for r in results):
        _plot(state["sweep_id"], output_dir, image, echo)
        echo(f"plot: {folder / f'{spec.metric}.png'}")


def _plot(sweep_id: str, output_dir, image: str | None, echo) -> None:
    built = images.ensure_image(tag=image, echo=echo)
    inside = f"{settings.OUTPUTS_MOUNT}/{settings.SWEEPS_DIR_NAME}/{sweep_id}"
    status = containers.run_foreground(
        containers.ContainerSpec(
            image=built.id,
            command=["python", "-m", "app", "sweep-plot", inside],
            role="plot",
            mounts=[containers.bind(str(output_dir), settings.OUTPUTS_MOUNT, read_only=False)],
        ),
        echo=echo,
    )
    if status != 0:
        raise TrainboxError(f"drawing the sweep's plot failed (exit {status})", status)

"""`deterministic: portable`: one weights digest on every simulated machine of {--cpus 1,
--cpus 2} x {no ISA cap, ONEDNN_MAX_CPU_ISA=AVX2, =SSE41}; `deterministic: true` differs on
at least one of them (else this test could not fail). Real containers of the session's
image, started the way `invoke train` starts them, all at once (tiny runs, 2 cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import settings
from app.launch import containers
from tests.engine.conftest import PROJECT_FILTER
from tests.photos import PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.docker

TINY = [
    *PHOTO_OVERRIDES,
    "training.epochs=2",
    "training.batch_size=8",
    "data.image_size=[24,24]",
    "model.conv_filters=[8,16]",
    "model.dense_units=16",
]
MACHINES = [(cpus, cap) for cpus in (1.0, 2.0) for cap in (None, "AVX2", "SSE41")]


@pytest.fixture
def no_leftovers(engine, tmp_path):
    """No container of this test remains (each mounts a folder under its tmp_path); narrower
    than conftest's, which also counts other sessions' containers on a shared engine."""
    yield
    left = [
        container.name
        for container in engine.containers.list(all=True, filters=PROJECT_FILTER, ignore_removed=True)
        if any(m.get("Source", "").startswith(str(tmp_path)) for m in container.attrs.get("Mounts", []))
    ]
    assert not left, f"left behind: {left}"


def start_run(image_id: str, data_dir: Path, output_dir: Path, mode: str, cpus: float, cap: str | None):
    output_dir.mkdir()
    command = ["python", "-m", "app", "train", "--data-dir", settings.DATA_MOUNT]
    command += ["--output-dir", settings.OUTPUTS_MOUNT, "--run-id", "run"]
    for override in [*TINY, f"deterministic={mode}"]:
        command += ["--set", override]
    spec = containers.ContainerSpec(
        image=image_id,
        command=command,
        role="test",
        mounts=[
            containers.bind(str(data_dir), settings.DATA_MOUNT, read_only=True),
            containers.bind(str(output_dir), settings.OUTPUTS_MOUNT, read_only=False),
        ],
        environment={"ONEDNN_MAX_CPU_ISA": cap} if cap else {},
        limits=containers.Limits(cpus=cpus),
    )
    return containers.start(spec)


def run_all(image_id: str, data_dir: Path, root: Path, runs: dict[str, tuple]) -> dict[str, dict]:
    """Start every run, wait for each, return each run's manifest."""
    started = {}
    try:
        for name, (mode, cpus, cap) in runs.items():
            started[name] = start_run(image_id, data_dir, root / name, mode, cpus, cap)
        for name, container in started.items():
            status = container.wait(timeout=600)["StatusCode"]
            assert status == 0, f"{name}: exit {status}\n{container.logs(tail=20).decode()}"
    finally:
        for container in started.values():
            containers.remove_quietly(container)
    return {name: json.loads((root / name / "run" / "manifest.json").read_text()) for name in runs}


def test_portable_gives_one_digest_on_six_machines_and_true_does_not(cpu_image, tmp_path, no_leftovers):
    data_dir = make_dataset(tmp_path / "data", train_per_class=8, test_per_class=2)
    runs = {f"portable-cpus{cpus:g}-{cap or 'nocap'}": ("portable", cpus, cap) for cpus, cap in MACHINES}
    # the two machines of the matrix most likely to differ under same-host determinism
    runs |= {"true-cpus2-nocap": ("true", 2.0, None), "true-cpus1-SSE41": ("true", 1.0, "SSE41")}
    manifests = run_all(cpu_image.id, data_dir, tmp_path, runs)

    portable = {name: m for name, m in manifests.items() if name.startswith("portable")}
    digests = {name: m["weights_sha256"] for name, m in portable.items()}
    assert len(set(digests.values())) == 1, digests
    for record in portable.values():
        assert record["numerics"]["mode"] == "portable"
        assert record["numerics"]["onednn_isa"] == "SSE41"
        assert record["numerics"]["intra_op_threads"] == record["numerics"]["inter_op_threads"] == 2
        assert record["numerics"]["jit_compile"] is False
    same_host = {name: m for name, m in manifests.items() if name.startswith("true")}
    assert len({m["weights_sha256"] for m in same_host.values()}) == 2
    assert same_host["true-cpus1-SSE41"]["numerics"]["onednn_isa"] == "SSE41"
    assert same_host["true-cpus1-SSE41"]["numerics"]["intra_op_threads"] == 1  # sized from the quota
    assert same_host["true-cpus2-nocap"]["numerics"]["intra_op_threads"] == 2

"""`invoke export --sweep`: the job array script runs each array task's trial through the
exported batch script, skips a completed trial and resumes an interrupted one. Really run by
bash, with `srun` and the container runtime stubbed (tests/unit/test_export_script_quoting.py);
the engine test runs it on real Slurm."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

from app import settings
from app.config import Config
from app.launch import export
from app.launch.sweep_spec import parse_spec, trial_configs
from tests.unit.test_export_script_quoting import calls, stubs


def write_export(tmp_path) -> str:
    image = SimpleNamespace(id="sha256:" + "ab" * 32, labels={}, attrs={}, history=list)
    values = export.template_values(image, "trainbox:cpu", gpu=False, output_dir=tmp_path)
    (tmp_path / "trainbox-cpu.sbatch").write_text(
        export.render("slurm.sbatch", values, quote=export.shell_word)
    )
    spec = parse_spec({"grid": {"model.dropout_rate": [0.1, 0.3]}}, "sweep s.yaml")
    planned = (spec, trial_configs(spec, Config(), "sweep s.yaml"))
    script = export.write_sweep(export.ExportRequest(sweep_file="s.yaml"), planned, values, tmp_path, print)
    return script.name.removeprefix("sweep-").removesuffix(".sbatch")


def array_task(tmp_path, sweep_id: str, task: int) -> subprocess.CompletedProcess:
    if not (tmp_path / "bin").is_dir():
        stubs(tmp_path)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "STUB_LOG": str(tmp_path / "calls.jsonl"),
           "HOME": str(tmp_path), "TRAINBOX_RUNTIME": "docker", "SLURM_SUBMIT_DIR": str(tmp_path),
           "SLURM_ARRAY_TASK_ID": str(task)}  # fmt: skip
    return subprocess.run(["bash", str(tmp_path / f"sweep-{sweep_id}.sbatch")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_each_array_task_trains_its_trial_and_a_resubmitted_one_skips_or_resumes(tmp_path):
    sweep_id = write_export(tmp_path)
    script = (tmp_path / f"sweep-{sweep_id}.sbatch").read_text()
    assert "#SBATCH --array=1-2\n" in script
    config = tmp_path / "sweeps" / sweep_id / "trial-02.yaml"
    assert "dropout_rate: 0.3" in config.read_text()

    result = array_task(tmp_path, sweep_id, 2)
    assert result.returncode == 0, result.stderr
    (call,) = calls(tmp_path)
    assert f"TRAINBOX_SWEEP_ID={sweep_id}" in call and "TRAINBOX_SWEEP_TRIAL=2" in call
    assert f"{config}:{settings.CONFIG_MOUNT}:ro" in call
    assert call[-2:] == ["--run-id", f"{sweep_id}-trial02"]

    run_dir = tmp_path / "outputs" / f"{sweep_id}-trial02"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"status": "interrupted"}, indent=2))
    assert array_task(tmp_path, sweep_id, 2).returncode == 0
    assert calls(tmp_path)[-1][-2:] == ["--resume", f"{sweep_id}-trial02"]

    (run_dir / "manifest.json").write_text(json.dumps({"status": "completed"}, indent=2))
    skipped = array_task(tmp_path, sweep_id, 2)
    assert skipped.returncode == 0 and "already completed" in skipped.stdout
    assert len(calls(tmp_path)) == 2

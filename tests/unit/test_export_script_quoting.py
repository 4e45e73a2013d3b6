"""Values written into the exported scripts stay text: run by bash, a `$(...)` in a label runs nothing.

The scripts are rendered from a stand-in image (the engine test in tests/engine/test_export_quoting.py
exports a real one) and really run by bash, with `srun` and the container runtime replaced by
stubs that record their arguments.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.launch import export

STUB = """#!/bin/bash
printf '%s\\n' "$@" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().splitlines()))' \\
  >> "$STUB_LOG"
"""
SRUN = """#!/bin/bash
while [[ "$1" == --* ]]; do shift; done
exec "$@"
"""


def hostile_values(marker: Path) -> dict[str, str]:
    image = SimpleNamespace(
        id="sha256:" + "ab" * 32,
        labels={
            "org.opencontainers.image.revision": f"$(touch {marker})",
            "trainbox.git_dirty": f"`touch {marker}`\n%post\ntouch {marker}",
        },
        attrs={"RootFS": {"Layers": ["sha256:" + "cd" * 32]}},
        # a step's text travels in the script too (TRAINBOX_IMAGE_LAYERS, JSON with quotes)
        history=lambda: [{"CreatedBy": f"/bin/sh -c echo \"$(touch {marker})\" 'x'", "Size": 1}],
    )
    return export.template_values(
        image, "trainbox:cpu", gpu=False, output_dir=marker.parent / f"$(touch {marker})"
    )


def stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"srun": SRUN, "docker": STUB, "apptainer": STUB}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STUB_LOG": str(tmp_path / "calls.jsonl"),
        "HOME": str(tmp_path),
    }


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("runtime", ["docker", "apptainer"])
def test_the_batch_script_passes_label_values_as_text(tmp_path, runtime):
    marker = tmp_path / "pwned"
    script = tmp_path / "trainbox-cpu.sbatch"
    script.write_text(export.render("slurm.sbatch", hostile_values(marker), quote=export.shell_word))
    env = {**stubs(tmp_path), "TRAINBOX_RUNTIME": runtime, "TRAINBOX_OUTPUT_DIR": str(tmp_path / "out")}
    result = subprocess.run(["bash", str(script), "--set", "training.epochs=1"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    (call,) = calls(tmp_path)
    assert f"TRAINBOX_GIT_COMMIT=$(touch {marker})" in call  # the label's text, as text
    assert "TRAINBOX_GIT_DIRTY=unknown" in call  # not a boolean: recorded as unknown
    assert call[-4:] == ["--run-id", "slurm-local", "--set", "training.epochs=1"]


def test_the_build_script_quotes_the_export_folder(tmp_path):
    marker = tmp_path / "pwned"
    script = tmp_path / "build-sif.sh"
    script.write_text(export.render("build-sif.sh", hostile_values(marker), quote=export.shell_word))
    result = subprocess.run(["sh", str(script)], env=stubs(tmp_path), capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert calls(tmp_path) == [["build", "trainbox-cpu.sif", "trainbox-cpu.def"]]


def test_the_definition_gets_no_extra_lines_or_sections_from_a_value(tmp_path):
    marker = tmp_path / "pwned"
    values = {**hostile_values(marker), "TAG": "trainbox:cpu\n%post\n    touch /tmp/x"}
    definition = export.render("apptainer.def", values)
    sections = [line for line in definition.splitlines() if line.startswith("%")]
    assert sections == ["%labels", "%help"]
    assert "    trainbox.tag trainbox:cpu?%post?    touch /tmp/x" in definition.splitlines()


def test_a_value_is_filled_in_once_even_when_it_looks_like_a_placeholder():
    values = {key: "@GPU_SBATCH@" for key in hostile_values(Path(os.devnull))}
    assert "#SBATCH --gres" not in export.render("apptainer.def", values)

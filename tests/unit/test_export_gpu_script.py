"""`invoke export --gpu`: the batch script asks Slurm for a GPU and hands it to the container.

The script is rendered for the GPU tag and really run by bash, with `srun`, the runtimes and
`nvidia-smi` replaced by stubs (tests/unit/test_export_script_quoting.py). The GPU image itself
is built and checked in tests/engine/test_gpu.py; its 6 GB tarball goes through the same
`save_image` as the CPU image's, which tests/engine/test_export.py exports for real.
"""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from app import settings
from app.launch import export
from tests.unit.test_export_script_quoting import calls, stubs

GPU_TAG = settings.image_tag(gpu=True)


def run_script(tmp_path, runtime: str, with_nvidia_smi: bool) -> list[str]:
    image = SimpleNamespace(id="sha256:" + "cd" * 32, labels={}, attrs={}, history=list)
    values = export.template_values(image, GPU_TAG, gpu=True, output_dir=tmp_path)
    script = tmp_path / "trainbox-gpu.sbatch"
    script.write_text(export.render("slurm.sbatch", values, quote=export.shell_word))
    env = stubs(tmp_path)
    if with_nvidia_smi:
        (tmp_path / "bin" / "nvidia-smi").write_text("#!/bin/bash\nexit 0\n")
        (tmp_path / "bin" / "nvidia-smi").chmod(0o755)
    (tmp_path / "bin" / "podman").write_text((tmp_path / "bin" / "docker").read_text())
    (tmp_path / "bin" / "podman").chmod(0o755)
    env |= {"TRAINBOX_RUNTIME": runtime, "SLURM_SUBMIT_DIR": str(tmp_path)}
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --gres=gpu:1\n" in script.read_text()
    (call,) = calls(tmp_path)
    return call


@pytest.mark.parametrize(
    ("runtime", "gpu_words"),
    [("docker", ["--gpus", "all"]), ("podman", ["--device", "nvidia.com/gpu=all"]), ("apptainer", ["--nv"])],
)
def test_the_gpu_script_requests_a_gpu_and_passes_it_to_the_gpu_image(tmp_path, runtime, gpu_words):
    call = run_script(tmp_path, runtime, with_nvidia_smi=True)
    at = call.index(gpu_words[0])
    assert call[at : at + len(gpu_words)] == gpu_words
    if runtime != "apptainer":
        assert GPU_TAG in call  # the exported GPU image, not the CPU one
    else:
        assert str(tmp_path / f"{export.file_stem(GPU_TAG)}.sif") in call


def test_without_nvidia_smi_docker_gets_no_gpu_flag(tmp_path):
    call = run_script(tmp_path, "docker", with_nvidia_smi=False)
    assert "--gpus" not in call and GPU_TAG in call

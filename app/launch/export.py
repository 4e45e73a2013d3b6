"""`invoke export`: the image as a docker-archive tarball, an Apptainer definition, a Slurm script.

What a user carries to a cluster that has no Docker and no registry: the tarball becomes a
SIF with `apptainer build` (docs/cluster.md), and the batch script runs the same training.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from app import manifest
from app.launch import images
from app.launch.engine import client
from app.launch.errors import TrainboxError, docker_errors
from app.launch.provenance import REPO_ROOT

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_EXPORT_DIR = REPO_ROOT / "export"
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ExportRequest:
    gpu: bool = False
    output_dir: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class Exported:
    tarball: Path
    definition: Path
    batch_script: Path
    build_command: str
    image_id: str


def render(template: str, values: dict[str, str]) -> str:
    """@KEY@ placeholders (shell scripts are full of $ and braces)."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def write_text(path: Path, text: str, executable: bool = False) -> None:
    manifest.write_bytes_atomic(path, text.encode("utf-8"))
    if executable:
        path.chmod(0o755)


def save_image(image, path: Path, echo=print) -> None:
    """Stream `docker save` into path (temporary name, renamed when complete)."""
    partial = path.with_name(f".{path.name}.partial")
    written = 0
    try:
        with open(partial, "wb") as handle:
            for chunk in image.save(chunk_size=CHUNK, named=True):
                handle.write(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    echo(f"wrote {path} ({written / 1e9:.2f} GB)")


def export(request: ExportRequest, echo=print) -> Exported:
    tag = request.image or images.default_tag(request.gpu)
    output_dir = Path(request.output_dir).expanduser().resolve() if request.output_dir else DEFAULT_EXPORT_DIR
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainboxError(f"output directory {output_dir} cannot be created: {error.strerror}") from None
    with docker_errors():
        try:
            image = client().images.get(tag)
        except docker.errors.ImageNotFound:
            build = "invoke build --gpu" if request.gpu else "invoke build"
            raise TrainboxError(f"image {tag} not found: build it first ({build})", exit_code=2) from None
        name = "trainbox-" + tag.split(":")[-1].replace("/", "-")
        values = {
            "TAG": tag, "NAME": name, "IMAGE_ID": image.id, "EXPORTED_AT": manifest.utc_now(),
            "GIT_COMMIT": image.labels.get("org.opencontainers.image.revision", "unknown"),
            "GIT_DIRTY": image.labels.get("trainbox.git_dirty", "unknown"),
            "GPU_SBATCH": "#SBATCH --gres=gpu:1" if request.gpu else "# (add #SBATCH --gres=gpu:N for GPUs)",
        }
        tarball = output_dir / f"{name}.tar"
        echo(f"saving {tag} ({image.short_id}) to {tarball} ...")
        save_image(image, tarball, echo)
    definition = output_dir / f"{name}.def"
    write_text(definition, render("apptainer.def", values))
    batch_script = output_dir / f"{name}.sbatch"
    write_text(batch_script, render("slurm.sbatch", values), executable=True)
    build_command = f"apptainer build {name}.sif {name}.def"
    write_text(output_dir / "build-sif.sh",
               f"#!/bin/sh\n# Build the SIF from the tarball (run where these files are).\n"
               f"cd {shlex.quote(str(output_dir))} 2>/dev/null || cd \"$(dirname \"$0\")\"\n"
               f"exec {build_command}\n", executable=True)
    echo(f"wrote {definition}")
    echo(f"wrote {batch_script}")
    echo(f"on the cluster, next to the tarball: {build_command}")
    echo(f"then: sbatch {batch_script.name}   (see docs/cluster.md)")
    return Exported(tarball, definition, batch_script, build_command, image.id)

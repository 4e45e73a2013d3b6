"""`invoke export`: the image as a docker-archive tarball, an Apptainer definition, a Slurm script.

What a user carries to a cluster that has no Docker and no registry: the tarball becomes a
SIF with `apptainer build` (docs/cluster.md), and the batch script runs the same training.
Every value written into these files is made one printable line, and quoted for the shell
where a shell reads it: an image label holding `$(...)` stays text.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from app import manifest, settings
from app.config import ConfigError, load_config
from app.container_env import UNKNOWN, LaunchFacts
from app.launch import images, sweeps
from app.launch.errors import TrainboxError, UsageError
from app.launch.folders import resolve_dir
from app.launch.sweep_spec import load_spec, trial_configs
from app.progress import progress

TEMPLATES = Path(__file__).parent / "templates"
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
CHUNK = 8 * 1024 * 1024


class Verbatim(str):
    """Template text written as it is: chosen by this module, or quoted already."""


@dataclass(frozen=True)
class ExportRequest:
    gpu: bool = False
    output_dir: str | None = None
    image: str | None = None
    sweep_file: str | None = None  # also a Slurm job array, one task per trial of this sweep
    config_file: str | None = None  # the sweep's base config (default configs/default.yaml) ...
    overrides: tuple[str, ...] = ()  # ... and its --set overrides


@dataclass(frozen=True)
class Exported:
    tarball: Path
    definition: Path
    batch_script: Path
    build_command: str
    image_id: str
    sweep_script: Path | None = None


def one_line(value: object) -> str:
    """Printable, on one line: a value can neither end a comment nor start a section."""
    return "".join(char if char.isprintable() else "?" for char in str(value))


def shell_word(value: object) -> str:
    return shlex.quote(one_line(value))


def render(template: str, values: Mapping[str, str], quote: Callable[[str], str] = one_line) -> str:
    """Fill the @KEY@ placeholders in one pass (shell scripts are full of $ and braces)."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")

    def fill(match: re.Match) -> str:
        value = values[match.group(1)]
        return value if isinstance(value, Verbatim) else quote(value)

    return PLACEHOLDER.sub(fill, text)


def file_stem(tag: str) -> str:
    """trainbox:cpu -> trainbox-cpu: a file name from the tag, whatever the tag holds."""
    return "trainbox-" + re.sub(r"[^A-Za-z0-9_.-]", "-", tag.split(":")[-1])


def launch_environment(image, tag: str) -> Verbatim:
    """The container's TRAINBOX_* provenance as quoted `--env NAME=value` words."""
    labels = image.labels or {}
    facts = LaunchFacts(
        image_id=image.id,
        image_tag=tag,
        image_code_sha256=labels.get(settings.CODE_LABEL),
        image_layers=images.image_layers(image),
        git_commit=labels.get(settings.REVISION_LABEL, UNKNOWN),
        git_dirty={"true": True, "false": False}.get(labels.get(settings.GIT_DIRTY_LABEL, "")),
    )
    words = [word for name, value in facts.to_environment().items() for word in ("--env", f"{name}={value}")]
    return Verbatim(" ".join(shell_word(word) for word in words))


def template_values(image, tag: str, gpu: bool, output_dir: Path) -> dict[str, str]:
    return {
        "TAG": tag,
        "NAME": file_stem(tag),
        "IMAGE_ID": image.id,
        "EXPORTED_AT": manifest.utc_now(),
        "EXPORT_DIR": str(output_dir),
        "LAUNCH_ENV": launch_environment(image, tag),
        "DATA_MOUNT": settings.DATA_MOUNT,
        "OUTPUTS_MOUNT": settings.OUTPUTS_MOUNT,
        "CONFIG_MOUNT": settings.CONFIG_MOUNT,
        "APP_ROOT": settings.APP_ROOT_IN_IMAGE,
        "PROJECT_LABEL": f"{settings.PROJECT_LABEL}={settings.PROJECT_NAME}",
        "RUN_ID_LABEL": settings.RUN_ID_LABEL,
        "GPU_SBATCH": Verbatim("#SBATCH --gres=gpu:1" if gpu else "# (add #SBATCH --gres=gpu:N for GPUs)"),
    }


def write_text(path: Path, text: str, executable: bool = False) -> None:
    manifest.write_bytes_atomic(path, text.encode("utf-8"))
    if executable:
        path.chmod(0o755)


def save_image(image, path: Path, echo=print) -> None:
    """Stream `docker save` into path (temporary name, renamed when complete), with progress
    against the image's size (the tarball is that plus a little tar overhead)."""
    partial = path.with_name(f".{path.name}.partial")
    written = 0
    try:
        with open(partial, "wb") as handle, progress(image.attrs.get("Size") or 0, "saving", "B") as bar:
            for chunk in image.save(chunk_size=CHUNK, named=True):
                handle.write(chunk)
                written += len(chunk)
                bar.advance(len(chunk))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    echo(f"wrote {path} ({written / 1e9:.2f} GB)")


def sweep_trials(request: ExportRequest) -> tuple | None:
    """The sweep's spec and trial configs, all checked before the (slow) export starts."""
    if request.sweep_file is None:
        return None
    try:
        spec = load_spec(request.sweep_file)
        base = load_config(resolve_dir(request.config_file, settings.DEFAULT_CONFIG), request.overrides)
        return spec, trial_configs(spec, base, f"sweep {request.sweep_file}")
    except ConfigError as error:
        raise UsageError(str(error)) from None


def write_sweep(request: ExportRequest, planned: tuple, values: dict, output_dir: Path, echo) -> Path:
    """The sweep's trial configs under sweeps/<id>/ and its job array script."""
    spec, trials = planned
    folder = output_dir / settings.SWEEPS_DIR_NAME / manifest.new_run_id()
    sweeps.write_trials(folder, spec, trials, file=str(request.sweep_file))
    script = output_dir / f"sweep-{folder.name}.sbatch"
    sweep_values = {**values, "SWEEP_ID": folder.name, "TRIALS": str(len(trials))}
    sweep_values["SWEEP_SCRIPT"] = script.name
    write_text(script, render("slurm-sweep.sbatch", sweep_values, quote=shell_word), executable=True)
    echo(f"wrote {script} ({len(trials)} trials, one array task each) and {folder}")
    return script


def export(request: ExportRequest, echo=print) -> Exported:
    tag = request.image or settings.image_tag(request.gpu)
    output_dir = resolve_dir(request.output_dir, settings.DEFAULT_EXPORT_DIR)
    planned = sweep_trials(request)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainboxError(f"output directory {output_dir} cannot be created: {error.strerror}") from None
    image = images.require(tag, request.gpu)
    values = template_values(image, tag, request.gpu, output_dir)
    name = values["NAME"]
    tarball = output_dir / f"{name}.tar"
    echo(f"saving {tag} ({image.short_id}) to {tarball} ...")
    save_image(image, tarball, echo)
    definition = output_dir / f"{name}.def"
    write_text(definition, render("apptainer.def", values))
    batch_script = output_dir / f"{name}.sbatch"
    write_text(batch_script, render("slurm.sbatch", values, quote=shell_word), executable=True)
    write_text(output_dir / "build-sif.sh", render("build-sif.sh", values, quote=shell_word), executable=True)
    build_command = f"apptainer build {name}.sif {name}.def"
    echo(f"wrote {definition}")
    echo(f"wrote {batch_script}")
    sweep_script = None if planned is None else write_sweep(request, planned, values, output_dir, echo)
    echo(f"on the cluster, next to the tarball: {build_command}")
    echo(f"then: sbatch {(sweep_script or batch_script).name}   (see docs/cluster.md)")
    return Exported(tarball, definition, batch_script, build_command, image.id, sweep_script)

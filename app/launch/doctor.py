"""`invoke doctor`: is this host ready to build and train? One line per check.

Each check says OK, or the problem and the fix. Only FAIL lines block training on
the CPU (the exit status says so); WARN lines are worth knowing, NOTE lines are facts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from app import settings
from app.launch import base, certs, engines, images
from app.launch.errors import ENGINE_ERRORS, TrainboxError, translate
from app.launch.provenance import code_sha256

OK, NOTE, WARN, FAIL = "OK", "NOTE", "WARN", "FAIL"
ENGINE = "container engine"
LOW_DISK_BYTES = 10 * 2**30  # an image build needs a few GB; the GPU image about 7
TOO_LITTLE_DISK_BYTES = 3 * 2**30  # the CPU image alone is ~1.7 GB
DOCTOR_TIMEOUT_S = 20  # a doctor must answer, even when the daemon hangs


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.what}: {self.detail}"


def connect():
    """(client, None) when the daemon answers, else (None, the failed check)."""
    try:
        engine = docker.from_env(timeout=DOCTOR_TIMEOUT_S)
        engine.ping()
        return engine, None
    except Exception as error:  # every failure here means "no engine"
        return None, Check(FAIL, ENGINE, str(translate(error)))


def check_engine(detected: engines.Engine, version: dict) -> Iterable[Check]:
    """Which engine answers (Docker or Podman, rootless or not), and what it cannot do."""
    platform = f"{version.get('Os', '?')}/{version.get('Arch', '?')}"
    yield Check(OK, ENGINE, f"reachable, {detected.describe()}, {platform}")
    if not detected.can_limit_resources:
        yield Check(
            WARN,
            "resource limits",
            "rootless Podman on cgroup v1 cannot limit containers: --cpus and --memory are refused "
            "(rootful Podman, Docker or cgroup v2 can)",
        )


def check_disk(info: dict) -> Check:
    root = info.get("DockerRootDir") or "/var/lib/docker"
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return Check(
            NOTE,
            "disk",
            f"cannot measure free space in the engine's data root {root} from here "
            "(remote or virtualised engine): check it with `docker system df`",
        )
    gib = free / 2**30
    if free < TOO_LITTLE_DISK_BYTES:
        return Check(
            FAIL,
            "disk",
            f"only {gib:.1f} GiB free in {root}: images will not fit; "
            "run `invoke clean --images` and `docker system prune`",
        )
    if free < LOW_DISK_BYTES:
        return Check(
            WARN,
            "disk",
            f"{gib:.1f} GiB free in {root} (below 10 GiB; the GPU image needs ~7): "
            "free space with `invoke clean --images` or `docker system prune`",
        )
    return Check(OK, "disk", f"{gib:.1f} GiB free in {root}")


def _image(engine, tag: str):
    try:
        return engine.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def check_image(engine, gpu: bool, current_code: str) -> Check:
    tag = settings.image_tag(gpu)
    image = _image(engine, tag)
    if image is None:
        build = "invoke build --gpu" if gpu else "invoke build (or let `invoke train` build it)"
        return Check(NOTE if gpu else WARN, f"image {tag}", f"not built yet: {build}")
    labels = image.labels or {}
    revision = labels.get(settings.REVISION_LABEL, "unknown")[:12]
    created = labels.get("org.opencontainers.image.created", image.attrs.get("Created", "?"))
    facts = f"{image.short_id.removeprefix('sha256:')}, revision {revision}, created {created}"
    if labels.get(settings.CODE_LABEL) != current_code:
        return Check(
            WARN,
            f"image {tag}",
            f"{facts}; stale: {images.stale_reason()} "
            f"(`invoke build{' --gpu' if gpu else ''}`; `invoke train` rebuilds it from cache)",
        )
    return Check(OK, f"image {tag}", f"{facts}; up to date with the code")


def check_base_image(engine, cpu_image_ready: bool) -> Check:
    """Where the base comes from; missing only matters when the CPU image must be (re)built."""
    name = settings.BASE_IMAGE
    image = _image(engine, name)
    if image is not None:
        labels = image.labels or {}
        source = labels.get(base.SOURCE_LABEL, "unknown origin")
        origin = labels.get(base.ORIGIN_LABEL, "")
        mirror = labels.get(base.MIRROR_LABEL, "")
        detail = f"present, made by {source}" + (f" ({origin} from {mirror})" if origin and mirror else "")
        return Check(OK, f"base image {name}", detail)
    try:
        base.check_can_debootstrap()
    except TrainboxError as error:
        status = NOTE if cpu_image_ready else FAIL
        return Check(status, f"base image {name}", f"not present, and {error}")
    return Check(
        OK,
        f"base image {name}",
        "not present; debootstrap is installed and you are root: the first build makes it",
    )


def _mask_credentials(value: str) -> str:
    return re.sub(r"//[^/@\s]+@", "//***@", value)


def check_ca_bundle() -> Check:
    try:
        path = certs.find_ca_bundle()
        certs.read_ca_bundle(path)
    except (TrainboxError, OSError) as error:
        return Check(FAIL, "CA bundle for builds", f"{error}: fix or unset ${certs.CA_ENV_VAR}")
    if path is None:
        return Check(
            OK,
            "CA bundle for builds",
            f"none (pip's default trust; set ${certs.CA_ENV_VAR} behind a TLS-intercepting proxy)",
        )
    how = f"${certs.CA_ENV_VAR}" if os.environ.get(certs.CA_ENV_VAR) else "from the host's pip configuration"
    return Check(OK, "CA bundle for builds", f"{path} ({how}; used in the build stage only)")


def check_proxies() -> Check:
    found = {}
    for name in images.PROXY_VARIABLES:
        for spelling in (name, name.lower()):
            if os.environ.get(spelling):
                found[spelling] = _mask_credentials(os.environ[spelling])
    if not found:
        return Check(OK, "proxy", "no proxy variables set (builds connect directly)")
    listed = ", ".join(f"{key}={value}" for key, value in found.items())
    return Check(OK, "proxy", f"passed to builds as build args: {listed}")


def visible_gpus() -> list[str]:
    if shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            listing = ""
        return [line for line in listing.splitlines() if line.startswith("GPU ")]
    return sorted(str(path) for path in Path("/dev").glob("nvidia[0-9]*"))


def check_gpu(info: dict, podman: bool) -> Iterable[Check]:
    runtimes = info.get("Runtimes") or {}
    if podman:
        yield Check(
            NOTE,
            "GPU requests",
            "not through Podman's Docker API (it drops them; --gpu is refused): use Docker, or "
            "`invoke export`'s Slurm script with TRAINBOX_RUNTIME=podman (CDI devices)",
        )
    elif "nvidia" in runtimes:
        yield Check(OK, "NVIDIA runtime", "registered with the engine (--gpu can request GPUs)")
    else:
        yield Check(
            NOTE,
            "NVIDIA runtime",
            "not registered (fine for CPU training; for --gpu install the "
            "NVIDIA Container Toolkit and run `nvidia-ctk runtime configure`)",
        )
    gpus = visible_gpus()
    if gpus:
        yield Check(OK, "GPUs", f"{len(gpus)} visible on this host: {'; '.join(gpus)}")
    else:
        yield Check(NOTE, "GPUs", "none visible on this host (training runs on the CPU)")


def run_checks() -> list[Check]:
    engine, failure = connect()
    checks: list[Check] = []
    if engine is None:
        checks.append(failure)
    else:
        try:
            info = engine.info()
            version = engine.version()
            detected = engines.detect(version, info)
            checks += list(check_engine(detected, version))
            checks.append(check_disk(info))
            current = code_sha256()
            cpu = check_image(engine, gpu=False, current_code=current)
            checks += [cpu, check_image(engine, gpu=True, current_code=current)]
            checks.append(check_base_image(engine, cpu_image_ready=cpu.status == OK))
        except ENGINE_ERRORS as error:
            checks.append(Check(FAIL, ENGINE, str(translate(error))))
            info, detected = {}, None
        finally:
            engine.close()
    checks += [check_ca_bundle(), check_proxies()]
    if engine is not None:
        checks += list(check_gpu(info, podman=bool(detected and detected.is_podman)))
    return checks


def doctor(echo=print) -> int:
    """Print one line per check; 0 when nothing blocks training on the CPU, 1 otherwise."""
    checks = run_checks()
    for check in checks:
        echo(check.line())
    failures = [check for check in checks if check.status == FAIL]
    echo(f"{len(failures)} problem(s) block training" if failures else "ready to train on the CPU")
    return 1 if failures else 0

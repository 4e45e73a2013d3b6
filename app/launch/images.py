"""Building the CPU and GPU images through the Docker SDK, with live progress."""

from __future__ import annotations

import io
import os
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker.errors
import docker.utils

from app import settings
from app.launch import base, certs
from app.launch.engine import client
from app.launch.errors import TrainboxError, docker_errors
from app.launch.provenance import REPO_ROOT, code_sha256, file_sha256, git_state

VARIANTS = settings.VARIANTS
PROJECT_LABEL = settings.PROJECT_LABEL
SOURCE_URL = "https://github.com/trainbox/trainbox"
CA_IN_CONTEXT = "docker/build-ca.crt"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY")


def default_tag(gpu: bool) -> str:
    return settings.image_tag(gpu)


def lock_file(variant: str, root: Path = REPO_ROOT) -> Path:
    return root / "requirements" / f"{variant}.lock"


def project_version(root: Path = REPO_ROOT) -> str:
    with open(root / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


@dataclass(frozen=True)
class BuildRequest:
    variant: str = "cpu"
    tag: str | None = None
    base_image: str = base.DEFAULT_BASE_IMAGE
    ca_bundle: str | None = None
    no_cache: bool = False
    context_root: Path = REPO_ROOT

    @property
    def image_tag(self) -> str:
        return self.tag or default_tag(self.variant == "gpu")


def provenance_build_args(variant: str, base_image: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """Build args that the Dockerfile's final LABEL turns into the image's provenance labels."""
    git = git_state(root)
    return {
        "BASE_IMAGE": base_image,
        "VARIANT": variant,
        "LOCK_SHA256": file_sha256(lock_file(variant, root)),
        "REVISION": git.commit,
        "CREATED": datetime.now(UTC).isoformat(timespec="seconds"),
        "SOURCE": SOURCE_URL,
        "VERSION": project_version(root),
        "GIT_DIRTY": str(git.dirty).lower(),
        "CODE_SHA256": code_sha256(root),
    }


def proxy_build_args() -> dict[str, str]:
    """Host proxy settings, as Docker's predefined (history-free) proxy build args."""
    args = {}
    for name in PROXY_VARIABLES:
        for spelling in (name, name.lower()):
            if os.environ.get(spelling):
                args[spelling] = os.environ[spelling]
    return args


def build_context(ca_bytes: bytes, root: Path = REPO_ROOT) -> io.BytesIO:
    """The repository filtered by .dockerignore, plus the build CA under a fixed name.

    The CA goes into the context tarball, never into the work tree, and only the
    builder stage reads it.
    """
    excludes = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    plain = docker.utils.tar(str(root), exclude=excludes, dockerfile=("Dockerfile", None))
    context = io.BytesIO(plain.read())
    plain.close()
    with tarfile.open(fileobj=context, mode="a") as archive:
        member = tarfile.TarInfo(CA_IN_CONTEXT)
        member.size = len(ca_bytes)
        member.mode = 0o644
        archive.addfile(member, io.BytesIO(ca_bytes))
    context.seek(0)
    return context


def build_image(request: BuildRequest, echo=print) -> str:
    """Build one variant, streaming the engine's output; returns the image id."""
    if request.variant not in VARIANTS:
        raise TrainboxError(f"unknown image variant '{request.variant}': choose cpu or gpu")
    base.ensure_base_image(request.base_image, echo=echo)
    ca_path = certs.find_ca_bundle(request.ca_bundle)
    ca_bytes = certs.read_ca_bundle(ca_path)
    echo(f"building {request.image_tag} from {request.base_image}"
         + (f" (extra CA for the build: {ca_path})" if ca_path else ""))
    with docker_errors():
        stream = client().api.build(
            fileobj=build_context(ca_bytes, request.context_root),
            custom_context=True,
            tag=request.image_tag,
            target="runtime",
            buildargs={
                **provenance_build_args(request.variant, request.base_image, request.context_root),
                **proxy_build_args(),
            },
            nocache=request.no_cache,
            rm=True,
            forcerm=True,
            decode=True,
        )
        _follow_build(stream, echo)
        image_id = client().images.get(request.image_tag).id
    echo(f"built {request.image_tag} ({image_id[:19]})")
    return image_id


def _follow_build(stream, echo) -> None:
    step = "the first step"
    for chunk in stream:
        if "stream" in chunk:
            text = chunk["stream"]
            if text.startswith("Step "):
                step = text.strip()
            sys.stdout.write(text)
            sys.stdout.flush()
        elif "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise TrainboxError(f"image build failed at {step}: {detail.strip().splitlines()[-1]}")
        elif "status" in chunk:
            echo(chunk["status"])


def image_or_none(tag: str):
    with docker_errors():
        try:
            return client().images.get(tag)
        except docker.errors.ImageNotFound:
            return None


def is_image_id(name: str) -> bool:
    return name.startswith("sha256:")


def display_tag(image, requested: str) -> str:
    """What a run records as its image tag: the tag asked for, or for an image asked for by
    id (`invoke reproduce`), one of its tags when it still has any."""
    if not is_image_id(requested):
        return requested
    return image.tags[0] if image.tags else requested


def ensure_image(gpu: bool = False, tag: str | None = None, echo=print):
    """The image to run: built when missing, rebuilt (from cache) when its code is stale."""
    tag = tag or default_tag(gpu)
    image = image_or_none(tag)
    custom = tag not in (default_tag(True), default_tag(False))
    if image is None and is_image_id(tag):
        raise TrainboxError(f"image {tag[:19]} is not on this engine: rebuild it with `invoke build`")
    if image is None and custom:
        raise TrainboxError(f"image {tag} not found: build it, or drop --image to use {default_tag(gpu)}")
    if image is not None and (custom or image.labels.get("trainbox.code_sha256") == code_sha256()):
        return image
    reason = "not built yet" if image is None else "older than the code in app/, configs/ or tests/"
    echo(f"{tag} is {reason}: building it")
    build_image(BuildRequest(variant="gpu" if gpu else "cpu", tag=tag), echo=echo)
    return image_or_none(tag)

"""Building the CPU and GPU images through the Docker SDK, with live progress."""

from __future__ import annotations

import io
import os
import re
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker.errors

from app import settings
from app.launch import base, certs, engines, layers
from app.launch.engine import client
from app.launch.errors import TrainboxError, UsageError
from app.launch.provenance import (
    DOCKERIGNORE,
    code_sha256,
    code_summary,
    context_paths,
    file_sha256,
    git_state,
)
from app.settings import REPO_ROOT

SOURCE_URL = "https://github.com/trainbox/trainbox"
CA_IN_CONTEXT = "docker/build-ca.crt"
# "Step 4/9 : RUN ..." (Docker); "STEP 4/9: RUN ..." or "[2/3] STEP 4/9: RUN ..." (Podman)
BUILD_STEP = re.compile(r"^(\[\d+/\d+\] )?(Step|STEP) \d+/\d+ ?:")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY")


def lock_file(variant: str, root: Path = REPO_ROOT) -> Path:
    return root / "requirements" / f"{variant}.lock"


def project_version(root: Path = REPO_ROOT) -> str:
    with open(root / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


@dataclass(frozen=True)
class BuildRequest:
    variant: str = "cpu"
    tag: str | None = None
    base_image: str = settings.BASE_IMAGE
    ca_bundle: str | None = None
    no_cache: bool = False
    context_root: Path = REPO_ROOT

    @property
    def image_tag(self) -> str:
        return self.tag or settings.image_tag(self.variant == "gpu")


def provenance_build_args(variant: str, base_image: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """Build args that the Dockerfile's final LABEL turns into the image's provenance labels."""
    git = git_state(root)
    return {
        "BASE_IMAGE": base_image,
        "VARIANT": variant,
        "LOCK_SHA256": file_sha256(lock_file(variant, root)),
        "REVISION": git.commit,
        # The commit's time, as SOURCE_DATE_EPOCH does for reproducible builds: building the
        # same tree again then changes no label, and the image keeps its id.
        "CREATED": git.committed or datetime.now(UTC).isoformat(timespec="seconds"),
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
    """The repository as .dockerignore filters it, plus the build CA under a fixed name.

    The CA goes into the context tarball, never into the work tree, and only the
    builder stage reads it. The context is filtered here, once: .dockerignore itself stays
    out, because Podman (Buildah) applies it again on its side and would drop the CA.
    """
    files = [path for path in context_paths(root) if path != DOCKERIGNORE]
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for path in files:
            add_as_root(archive, root / path, path)
        member = tarfile.TarInfo(CA_IN_CONTEXT)
        member.size = len(ca_bytes)
        member.mode = 0o644
        archive.addfile(member, io.BytesIO(ca_bytes))
    context.seek(0)
    return context


def add_as_root(archive: tarfile.TarFile, path: Path, name: str) -> None:
    """One context entry, owned by root in the archive. The classic builder keys COPY's
    cache on the entries' owners (it copies them as root either way): a checkout owned by
    another user would otherwise rebuild every layer and give the same tree another image id."""
    info = archive.gettarinfo(str(path), arcname=name)
    if info is None:  # a socket: nothing to send
        return
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.isfile():
        with open(path, "rb") as handle:
            archive.addfile(info, handle)
    else:
        archive.addfile(info)


def build_image(request: BuildRequest, echo=print) -> str:
    """Build one variant, streaming the engine's output; returns the image id."""
    if request.variant not in settings.VARIANTS:
        raise UsageError(f"unknown image variant '{request.variant}': choose cpu or gpu")
    ca_path = certs.find_ca_bundle(request.ca_bundle)  # a wrong bundle costs a second, not a debootstrap
    ca_bytes = certs.read_ca_bundle(ca_path)
    base.ensure_base_image(request.base_image, echo=echo)
    echo(
        f"building {request.image_tag} from {request.base_image}"
        + (f" (extra CA for the build: {ca_path})" if ca_path else "")
    )
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
            if BUILD_STEP.match(text):
                step = text.strip()
            sys.stdout.write(text)
            sys.stdout.flush()
        elif "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise TrainboxError(f"image build failed at {step}: {detail.strip().splitlines()[-1]}")
        elif "status" in chunk:
            echo(chunk["status"])


def find(name: str):
    """The image called `name` (a tag or an id), or None when the engine has no such image."""
    try:
        return client().images.get(name)
    except docker.errors.ImageNotFound:
        return None


def require(name: str, gpu: bool = False):
    """The image called `name`; a missing one is a usage error saying how to build it."""
    image = find(name)
    if image is None:
        build = "invoke build --gpu" if gpu else "invoke build"
        raise UsageError(f"image {name} not found: build it first ({build})")
    return image


def image_layers(image) -> tuple[tuple[str, str | None], ...]:
    """The image's layer digests, oldest first, each with the Dockerfile step that made it
    (None where its history cannot tell): what a run's manifest records of its image."""
    digests = (image.attrs.get("RootFS") or {}).get("Layers") or []
    try:
        history = image.history()
    except docker.errors.APIError:  # an engine without the history endpoint: digests alone
        history = []
    return tuple((layer.digest, layer.step) for layer in layers.paired(digests, history))


def is_image_id(name: str) -> bool:
    return name.startswith("sha256:")


def display_tag(image, requested: str) -> str:
    """What a run records as its image tag: the tag asked for, or for an image asked for by
    id (`invoke reproduce`), one of its tags when it still has any."""
    if not is_image_id(requested):
        return requested
    return engines.short_tag(image.tags[0]) if image.tags else requested


def is_current(image) -> bool:
    """Was the image built from the work tree as it is (the files the build context sends)?"""
    return (image.labels or {}).get(settings.CODE_LABEL) == code_sha256()


def stale_reason() -> str:
    return f"older than the work tree's {code_summary()} (what the build context holds)"


def ensure_image(gpu: bool = False, tag: str | None = None, echo=print):
    """The image to run: built when missing, rebuilt (from cache) when its code is stale.

    Only the default tags are built here; another tag or an id must exist already.
    """
    tag = tag or settings.image_tag(gpu)
    if tag not in (settings.image_tag(True), settings.image_tag(False)):
        if is_image_id(tag) and find(tag) is None:
            raise UsageError(f"image {tag[:19]} is not on this engine: rebuild it with `invoke build`")
        return require(tag, gpu)
    image = find(tag)
    if image is not None and is_current(image):
        return image
    echo(f"{tag} is {'not built yet' if image is None else stale_reason()}: building it")
    build_image(BuildRequest(variant="gpu" if gpu else "cpu", tag=tag), echo=echo)
    return require(tag, gpu)

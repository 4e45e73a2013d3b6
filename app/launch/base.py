"""The base image, made from the Debian archive when no registry can be reached."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker.errors

from app.launch.engine import client
from app.launch.errors import TrainboxError, docker_errors

DEFAULT_BASE_IMAGE = "trainbox-base:bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

# Docs, man pages and translations are most of what `apt-get install python3` adds
# beyond the interpreter; the base tells dpkg never to unpack them.
DPKG_EXCLUDES = """\
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
"""


def image_exists(name: str) -> bool:
    with docker_errors():
        try:
            client().images.get(name)
        except docker.errors.ImageNotFound:
            return False
    return True


def ensure_base_image(name: str = DEFAULT_BASE_IMAGE, echo=print) -> None:
    """Present, pulled, or made here with debootstrap: in that order."""
    if image_exists(name):
        return
    if name != DEFAULT_BASE_IMAGE:
        echo(f"base image {name} is not present; pulling it")
        try:
            client().images.pull(name)
            return
        except (docker.errors.DockerException, OSError):
            raise TrainboxError(
                f"base image {name} is neither present nor pullable: "
                f"run `invoke base` and build with the default base {DEFAULT_BASE_IMAGE}"
            ) from None
    echo(f"base image {name} is not present; making it from the Debian archive")
    make_base_image(name, echo=echo)


def check_can_debootstrap() -> None:
    if shutil.which("debootstrap") is None:
        raise TrainboxError(
            "cannot make the base image: debootstrap is not installed "
            "(sudo apt-get install debootstrap), or set --base-image to an image you can pull"
        )
    if os.geteuid() != 0:
        raise TrainboxError(
            "cannot make the base image: debootstrap needs root; run `sudo $(which invoke) base` once, "
            "or set --base-image to an image you can pull"
        )


def make_base_image(
    name: str = DEFAULT_BASE_IMAGE, suite: str = DEBIAN_SUITE, mirror: str = DEBIAN_MIRROR, echo=print
) -> str:
    """debootstrap a minimal Debian root file system and import it as an image; returns its id."""
    check_can_debootstrap()
    repository, _, tag = name.partition(":")
    with tempfile.TemporaryDirectory(prefix="trainbox-base-") as workdir:
        rootfs = Path(workdir) / "rootfs"
        _debootstrap(suite, rootfs, mirror, echo)
        (rootfs / "etc/dpkg/dpkg.cfg.d/trainbox-excludes").write_text(DPKG_EXCLUDES)
        _remove_leftovers(rootfs)
        tarball = Path(workdir) / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], check=True
        )
        echo(f"importing {tarball.stat().st_size // 2**20} MB root file system as {name}")
        with docker_errors():
            client().api.import_image_from_file(
                str(tarball),
                repository=repository,
                tag=tag or "latest",
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    'CMD ["/bin/bash"]',
                    f"LABEL org.opencontainers.image.base.name=debian:{suite} "
                    f"trainbox.base.source=debootstrap trainbox.base.mirror={mirror}",
                ],
            )
            image_id = client().images.get(name).id
    echo(f"made base image {name} ({image_id[:19]})")
    return image_id


def _remove_leftovers(rootfs: Path) -> None:
    """Package caches and the docs debootstrap unpacked before the excludes existed."""
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                     "usr/share/info", "usr/share/locale"):
        for path in (rootfs / leftover).glob("*"):
            if path.is_file() or path.is_symlink():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)


def _debootstrap(suite: str, rootfs: Path, mirror: str, echo) -> None:
    command = ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror]
    echo("$ " + " ".join(command))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-5:]
        if line.startswith(("I: Retrieving Release", "I: Base system", "E:", "W:")):
            echo("  " + line.rstrip())
    if process.wait() != 0:
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        raise TrainboxError(f"debootstrap {suite} from {mirror} failed: {last}")

"""The base image, made from the Debian archive when no registry can be reached."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker.errors

from app import settings
from app.launch.engine import client
from app.launch.errors import ENGINE_ERRORS, TrainboxError

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Debian's signing keys (package debian-archive-keyring): debootstrap checks the Release
# file's signature with them, and the packages' hashes against the Release file.
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# What the base image says about where it came from (`invoke doctor` shows it).
ORIGIN_LABEL = "org.opencontainers.image.base.name"
SOURCE_LABEL = "trainbox.base.source"
MIRROR_LABEL = "trainbox.base.mirror"

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
    try:
        client().images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_base_image(name: str = settings.BASE_IMAGE, echo=print) -> None:
    """Present, pulled, or made here with debootstrap: in that order."""
    if image_exists(name):
        return
    if name != settings.BASE_IMAGE:
        echo(f"base image {name} is not present; pulling it")
        try:
            client().images.pull(name)
            return
        except (*ENGINE_ERRORS, OSError):
            raise TrainboxError(
                f"base image {name} is neither present nor pullable: "
                f"run `invoke base` and build with the default base {settings.BASE_IMAGE}"
            ) from None
    echo(f"base image {name} is not present; making it from the Debian archive")
    make_base_image(name, echo=echo)


def check_can_debootstrap(keyring: Path = DEBIAN_KEYRING) -> None:
    """debootstrap, root, and Debian's keys: without the keys nothing could be verified."""
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
    if not keyring.is_file():
        raise TrainboxError(
            f"cannot make the base image: Debian's archive keyring {keyring} is missing, so the "
            "packages could not be verified (sudo apt-get install debian-archive-keyring)"
        )


def make_base_image(
    name: str = settings.BASE_IMAGE,
    suite: str = DEBIAN_SUITE,
    mirror: str = DEBIAN_MIRROR,
    keyring: Path = DEBIAN_KEYRING,
    echo=print,
) -> str:
    """debootstrap a minimal, verified Debian root file system and import it; returns its id."""
    check_can_debootstrap(keyring)
    with tempfile.TemporaryDirectory(prefix="trainbox-base-") as workdir:
        rootfs = Path(workdir) / "rootfs"
        _debootstrap(suite, rootfs, mirror, keyring, echo)
        (rootfs / "etc/dpkg/dpkg.cfg.d/trainbox-excludes").write_text(DPKG_EXCLUDES)
        _remove_leftovers(rootfs)
        tarball = Path(workdir) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        echo(f"importing {tarball.stat().st_size // 2**20} MB root file system as {name}")
        image_id = import_rootfs(
            tarball,
            name,
            labels={ORIGIN_LABEL: f"debian:{suite}", SOURCE_LABEL: "debootstrap", MIRROR_LABEL: mirror},
        )
    echo(f"made base image {name} ({image_id[:19]})")
    return image_id


def import_rootfs(tarball: Path, name: str, labels: dict[str, str]) -> str:
    """Import a root file system tarball as the image `name` (with the project label); its id."""
    label_words = " ".join(f"{key}={value}" for key, value in settings.project_labels(**labels).items())
    # The tag goes with the name: Podman 4's API ignores a separate tag (and says :latest).
    client().api.import_image_from_file(
        str(tarball),
        repository=name,
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["/bin/bash"]',
            f"LABEL {label_words}",
        ],
    )
    return client().images.get(name).id


def _remove_leftovers(rootfs: Path) -> None:
    """Package caches and the docs debootstrap unpacked before the excludes existed."""
    for leftover in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
    ):
        for path in (rootfs / leftover).glob("*"):
            if path.is_file() or path.is_symlink():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)


def debootstrap_command(suite: str, rootfs: Path, mirror: str, keyring: Path) -> list[str]:
    # --keyring makes debootstrap fail when the Release signature does not verify (without
    # a keyring it warns and goes on unverified).
    return ["debootstrap", "--variant=minbase", f"--keyring={keyring}", suite, str(rootfs), mirror]


def _debootstrap(suite: str, rootfs: Path, mirror: str, keyring: Path, echo) -> None:
    command = debootstrap_command(suite, rootfs, mirror, keyring)
    echo("$ " + " ".join(command))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        tail = [*tail, line.rstrip()][-5:]
        if line.startswith(("I: Retrieving Release", "I: Base system", "E:", "W:")):
            echo("  " + line.rstrip())
    if process.wait() != 0:
        errors = [line for line in tail if line.startswith("E:")]  # the hints after it say less
        last = (errors or [line for line in tail if line.strip()] or ["no output"])[-1]
        raise TrainboxError(f"debootstrap {suite} from {mirror} failed: {last}")

"""Images built through the SDK, against the real engine: labels, CA hygiene, cache, failures."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import subprocess
import tarfile
import uuid
from datetime import datetime
from pathlib import Path

import pytest

import docker
from app import settings
from app.launch.certs import find_ca_bundle
from app.launch.images import CA_IN_CONTEXT, build_context
from tests.helpers import REPO_ROOT, assert_one_line_error, copy_repo, invoke

pytestmark = pytest.mark.docker


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_cpu_image_labels(cpu_image):
    labels = cpu_image.labels
    assert labels["org.opencontainers.image.revision"] == git("rev-parse", "HEAD")
    created = datetime.fromisoformat(labels["org.opencontainers.image.created"])
    assert created == datetime.fromisoformat(git("log", "-1", "--format=%cI"))
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    lock = (REPO_ROOT / "requirements" / "cpu.lock").read_bytes()
    assert labels["trainbox.lock_sha256"] == hashlib.sha256(lock).hexdigest()
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    assert labels["trainbox.git_dirty"] == str(dirty).lower()
    assert labels["trainbox.variant"] == "cpu"
    assert labels["org.opencontainers.image.base.name"] == "trainbox-base:bookworm"


def test_building_the_same_tree_again_gives_the_same_image_id(engine, cpu_image):
    """Nothing in the build changes with the clock (`created` is the commit's time). Under a
    tag of its own: whatever happens here, trainbox:cpu stays the image other tests hold."""
    tag = unique_tag("same-tree")
    try:
        result = invoke("build", "--tag", tag)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert engine.images.get(tag).id == cpu_image.id
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(tag)  # the tag only: the layers are cpu_image's


def test_imports_app_and_tensorflow_as_non_root(engine, cpu_image):
    output = engine.containers.run(
        settings.image_tag(),
        [
            "python",
            "-c",
            "import os, app, tensorflow as tf; "
            "print(os.getuid(), tf.__version__, tf.sysconfig.get_build_info()['is_cuda_build'])",
        ],
        remove=True,
    ).decode()
    uid, version, cuda = output.split()
    assert uid != "0"
    assert version == "2.21.0"
    assert cuda == "False"


def test_image_is_slim(engine, cpu_image):
    leftovers = [
        "/opt/venv/lib/python3.11/site-packages/tensorflow/include",
        "/opt/venv/include",
        "/root/.cache/pip",
        "/home/trainbox/.cache/pip",
        "/usr/bin/gcc",
        "/usr/bin/strip",
        "/usr/include/python3.11",
        "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
        # build-time only: scikit-learn/SciPy wrote the bundled digits, pip installed the venv
        "/opt/venv/lib/python3.11/site-packages/sklearn",
        "/opt/venv/lib/python3.11/site-packages/scipy",
        "/opt/venv/bin/pip",
        "/opt/venv/lib/python3.11/site-packages/numpy/_core/tests",
    ]
    script = "; ".join(f"[ -e {path} ] && echo present: {path}" for path in leftovers) + "; true"
    output = engine.containers.run(settings.image_tag(), ["sh", "-c", script], user="0", remove=True).decode()
    assert output == ""
    # What replaced scikit-learn: the digits, split at build time.
    check = (
        "import numpy; d = numpy.load('/opt/venv/share/trainbox/digits.npz'); "
        "print(len(d['train']), len(d['test']), d['images'].shape)"
    )
    output = engine.containers.run(settings.image_tag(), ["python", "-c", check], remove=True).decode()
    assert output.split() == ["1437", "360", "(1797,", "8,", "8)"]


def test_build_ca_travels_only_in_the_context():
    bundle = b"-----BEGIN CERTIFICATE-----\nTRAINBOXTESTMARKER\n-----END CERTIFICATE-----\n"
    with tarfile.open(fileobj=build_context(bundle)) as context:
        names = context.getnames()
        assert context.extractfile(CA_IN_CONTEXT).read() == bundle
    assert not any(name.startswith(("data/", "outputs/", ".git/")) for name in names)
    assert not (REPO_ROOT / CA_IN_CONTEXT).exists()


def pem_bodies(text: str) -> set[str]:
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----", text, re.S)
    return {"".join(block.split()) for block in blocks}


def test_build_ca_is_absent_from_the_image(engine, cpu_image):
    """The bundle given to the build (the host pip's, here) leaves no trace in the image's files.

    Public CAs ship in many bundles (certifi, pip's vendored copy), so the check is on the
    certificates that are in no public store (on these machines: the TLS interceptor's),
    on the bundle as a whole, and on the file names the builder stage uses.
    """
    bundle = find_ca_bundle()
    assert bundle is not None, "this machine's pip has a CA bundle configured"
    bundle_bytes = bundle.read_bytes()
    public = set().union(
        *(pem_bodies(path.read_text()) for path in Path("/usr/share/ca-certificates").rglob("*.crt"))
    )
    private = pem_bodies(bundle_bytes.decode("latin-1")) - public
    container = engine.containers.create(settings.image_tag(), ["true"])
    try:
        image_pems: set[str] = set()
        found_paths: list[str] = []
        stream = io.BufferedReader(_ChunkReader(container.export()), buffer_size=1 << 20)
        with tarfile.open(fileobj=stream, mode="r|") as files:
            for member in files:
                if member.name.endswith(("build-ca.crt", "pip-ca.crt")):
                    found_paths.append(member.name)
                if not member.isfile() or member.size > 5_000_000:
                    continue
                content = files.extractfile(member).read()
                if content == bundle_bytes:
                    found_paths.append(member.name)
                if b"BEGIN CERTIFICATE" in content:
                    image_pems |= pem_bodies(content.decode("latin-1"))
    finally:
        container.remove(force=True)
    assert not found_paths
    assert image_pems, "the export was read (certifi's bundle at least is in the image)"
    assert not (private & image_pems)


class _ChunkReader(io.RawIOBase):
    """A file-like view of the SDK's chunk generator, for tarfile's streaming mode."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def unique_tag(purpose: str) -> str:
    """A tag no other test or concurrent run uses (and never one of the user's)."""
    return f"{settings.IMAGE_REPOSITORY}-test:{purpose}-{uuid.uuid4().hex[:8]}"


def test_code_only_change_rebuilds_from_cache(engine, cpu_image, tmp_path):
    copy = copy_repo(tmp_path / "repo")
    with open(copy / "app" / "__init__.py", "a") as handle:
        handle.write("# a code-only change\n")
    tag = unique_tag("rebuild")
    try:
        result = invoke("build", "--tag", tag, cwd=copy)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        steps = re.split(r"\nStep \d+/\d+ : ", result.stdout)
        install = next(step for step in steps if "pip install" in step)
        assert "Using cache" in install, install
        copy_venv = next(step for step in steps if step.startswith("COPY --from=builder"))
        assert "Using cache" in copy_venv, copy_venv
        copy_app = next(step for step in steps if step.startswith("COPY app "))
        assert "Using cache" not in copy_app
        assert (
            engine.images.get(tag).labels["trainbox.code_sha256"] != cpu_image.labels["trainbox.code_sha256"]
        )
    finally:
        engine.images.remove(tag, force=True)


def test_daemon_unreachable_is_one_line():
    result = invoke("build", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert_one_line_error(result, "cannot reach the Docker daemon")


def test_base_image_that_cannot_be_made(tmp_path):
    result = invoke("base", "--name", "trainbox-base:never", env={"PATH": "/nonexistent"})
    assert_one_line_error(result, "debootstrap is not installed", "apt-get install debootstrap")


def test_base_image_neither_present_nor_pullable():
    result = invoke("build", "--base-image", "trainbox-base:does-not-exist")
    assert_one_line_error(result, "neither present nor pullable", "invoke base")


def test_pip_failure_names_the_failing_step(engine, tmp_path):
    copy = copy_repo(tmp_path / "repo")
    lock = copy / "requirements" / "cpu.lock"
    # A pin that PyPI cannot satisfy: pip fails on the first requirement, in seconds.
    lock.write_text(re.sub(r"^absl-py==\S+", "absl-py==0.0.0", lock.read_text(), count=1, flags=re.M))
    tag = unique_tag("broken")
    result = invoke("build", "--tag", tag, cwd=copy)
    line = assert_one_line_error(result, "image build failed at Step")
    assert "pip install" in line
    assert not engine.images.list(name=tag), "a failed build tags nothing"

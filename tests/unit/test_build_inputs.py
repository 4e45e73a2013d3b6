"""What goes into an image build: the CA bundle, the proxy args, the context and its hash."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

from app.launch import certs, images, provenance
from app.launch.errors import TrainboxError
from tests.helpers import REPO_ROOT

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def bundles(tmp_path, monkeypatch):
    """Three distinct PEM files, and no CA setting inherited from the machine."""
    for name in ("PIP_CERT", certs.CA_ENV_VAR, "PIP_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    paths = {}
    for name in ("explicit", "environment", "pip"):
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(PEM)
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\ncert = {paths['pip']}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))  # what `pip config list` reads
    return paths


def test_ca_bundle_order_explicit_then_environment_then_pip(bundles, monkeypatch):
    assert certs.find_ca_bundle() == bundles["pip"]  # from the real `pip config list`
    monkeypatch.setenv(certs.CA_ENV_VAR, str(bundles["environment"]))
    assert certs.find_ca_bundle() == bundles["environment"]
    assert certs.find_ca_bundle(str(bundles["explicit"])) == bundles["explicit"]


def test_pip_cert_variable_counts_as_pip_configuration(bundles, monkeypatch):
    monkeypatch.setenv("PIP_CERT", str(bundles["environment"]))
    assert certs.find_ca_bundle() == bundles["environment"]


def test_no_ca_anywhere_is_none(monkeypatch):
    for name in ("PIP_CERT", certs.CA_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip then reads no configuration at all
    assert certs.find_ca_bundle() is None
    assert certs.read_ca_bundle(None) == b""


def test_a_missing_or_non_pem_bundle_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(certs.CA_ENV_VAR, raising=False)
    with pytest.raises(TrainboxError, match=r"CA bundle not found: .*nope\.pem"):
        certs.find_ca_bundle(str(tmp_path / "nope.pem"))
    monkeypatch.setenv(certs.CA_ENV_VAR, str(tmp_path / "gone.pem"))
    with pytest.raises(TrainboxError, match=r"\$TRAINBOX_CA_BUNDLE"):
        certs.find_ca_bundle()
    text = tmp_path / "notes.txt"
    text.write_text("not a certificate")
    with pytest.raises(TrainboxError, match="holds no PEM certificate"):
        certs.read_ca_bundle(text)


def test_proxy_variables_become_build_args_in_both_spellings(monkeypatch):
    for name in images.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert images.proxy_build_args() == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy:3128")
    monkeypatch.setenv("no_proxy", "localhost,.internal")
    assert images.proxy_build_args() == {
        "HTTPS_PROXY": "http://user:secret@proxy:3128",
        "no_proxy": "localhost,.internal",
    }


@pytest.fixture
def tree(tmp_path) -> Path:
    """A small work tree with the repository's .dockerignore and Dockerfile."""
    root = tmp_path / "repo"
    for name in (".dockerignore", "Dockerfile", "pyproject.toml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, root / name)
    for name in (
        "app/train/run.py",
        "configs/default.yaml",
        "tests/unit/test_x.py",
        "notebooks/explore.ipynb",
        "requirements/cpu.lock",
        "docker/slim-venv.sh",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    return root


JUNK = [
    "test-artifacts/notebook.png", "tests/artifacts/old.png", "app/__pycache__/run.cpython-311.pyc",
    "tests/.pytest_cache/v/x",
    ".hypothesis/examples/x", "app/train/stale.pyc", "notebooks/.ipynb_checkpoints/x.ipynb",
    "data/digits/train/3/0001.png", "outputs/run/manifest.json", ".git/HEAD", "docker/build-ca.crt",
    "requirements/cpu.in", "bench/results.json", ".env",
]  # fmt: skip


def context_names(root: Path) -> set[str]:
    with tarfile.open(fileobj=images.build_context(PEM, root), mode="r") as archive:
        return {member.name for member in archive.getmembers() if member.isfile()}


def test_build_context_holds_the_code_and_the_build_ca_only(tree):
    for name in JUNK:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("junk")
    names = context_names(tree)
    assert names == {  # no .dockerignore: Podman would apply it again, and drop the build CA
        "Dockerfile", "pyproject.toml", "app/train/run.py", "configs/default.yaml",
        "tests/unit/test_x.py", "notebooks/explore.ipynb", "requirements/cpu.lock",
        "docker/slim-venv.sh", images.CA_IN_CONTEXT,
    }  # fmt: skip
    with tarfile.open(fileobj=images.build_context(PEM, tree), mode="r") as archive:
        assert archive.extractfile(images.CA_IN_CONTEXT).read() == PEM  # the generated one, not the file


def test_code_sha256_ignores_test_output_and_caches_but_not_code(tree):
    before = provenance.code_sha256(tree)
    for name in JUNK:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("junk")
    assert provenance.code_sha256(tree) == before
    (tree / "app/train/run.py").write_text("# changed\n")
    assert provenance.code_sha256(tree) != before
    (tree / "app/train/run.py").write_text("# app/train/run.py\n")
    (tree / "configs/new.yaml").write_text("seed: 1\n")
    assert provenance.code_sha256(tree) != before


def test_the_stale_message_names_what_the_hash_covers(tree):
    summary = provenance.code_summary(tree)
    assert summary.split(", ") == [
        ".dockerignore", "Dockerfile", "app/", "configs/", "docker/", "notebooks/", "pyproject.toml",
        "requirements/", "tests/",
    ]  # fmt: skip
    assert "artifacts" not in summary

"""`invoke reproduce` on an engine that no longer has the run's image: rebuilt from the run's
commit (and run only when its lock and code hashes are the run's), or loaded from a tarball.

The run's image is built under a unique tag from a committed copy of the repository with a
unique comment in app/, so its id is the module's alone and removing it removes the image.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import pytest

from app import settings
from app.launch.rebuild import rebuild_tag
from tests.helpers import assert_one_line_error, copy_repo, invoke
from tests.photos import PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.docker

TINY = [*PHOTO_OVERRIDES, "data.image_size=[8,8]", "model.conv_filters=[4]", "model.dense_units=8",
        "training.epochs=1", "training.batch_size=4"]  # fmt: skip


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


@dataclass(frozen=True)
class GoneRun:
    repo: Path
    data: Path
    outputs: Path
    run_id: str
    image_id: str
    archive: Path  # `docker save` of the run's image, made before it was removed

    def reproduce(self, run_id: str, *args: str) -> subprocess.CompletedProcess:
        return invoke("reproduce", run_id, "--output-dir", str(self.outputs), "--data-dir", str(self.data),
                      *args, cwd=self.repo, timeout=1200)  # fmt: skip


def remove_image(engine, image_id: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        engine.images.remove(image_id, force=True)


@pytest.fixture(scope="module")
def gone_run(engine, tmp_path_factory):
    """A completed tiny run whose image was saved to a tarball, then removed from the engine."""
    root = tmp_path_factory.mktemp("rebuild")
    repo = copy_repo(root / "trainbox")
    marker = uuid.uuid4().hex[:12]
    init = repo / "app" / "__init__.py"
    init.write_text(init.read_text() + f"# reproduce-rebuild test {marker}\n")
    (repo / ".git" / "index.lock").unlink(missing_ok=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"reproduce-rebuild test {marker}")
    tag = f"{settings.IMAGE_REPOSITORY}:rebuild-test-{marker}"
    built = invoke("build", "--tag", tag, cwd=repo, timeout=1800)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    image = engine.images.get(tag)
    rebuilt = rebuild_tag(git(repo, "rev-parse", "HEAD"))
    try:
        data = make_dataset(root / "data", 4, 2)
        outputs = root / "outputs"
        sets = [arg for override in TINY for arg in ("--set", override)]
        folders = ["--data-dir", str(data), "--output-dir", str(outputs)]
        trained = invoke("train", "--image", tag, *folders, *sets, cwd=repo, timeout=900)
        assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-2000:]
        run_id = re.findall(r"^run directory: /\S+/(\S+)$", trained.stdout, re.M)[-1]
        assert manifest(outputs / run_id)["image"]["code_sha256"] == image.labels[settings.CODE_LABEL]
        archive = root / "image.tar"
        with open(archive, "wb") as handle:
            for chunk in image.save(named=True):
                handle.write(chunk)
        engine.images.remove(tag)
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(image.id)  # no other tag kept it
        yield GoneRun(repo, data, outputs, run_id, image.id, archive)
    finally:
        remove_image(engine, image.id)
        remove_image(engine, rebuilt)


def test_a_gone_image_is_rebuilt_from_the_commit_and_reproduces_identically(gone_run):
    result = gone_run.reproduce(gone_run.run_id)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"^rebuilt \S+:reproduce-[0-9a-f]{12}: lock and code hashes match", result.stdout, re.M)
    assert re.search(rf"^identical: \S+ reproduces {gone_run.run_id} ", result.stdout, re.M)
    assert git(gone_run.repo, "worktree", "list").count("\n") == 0  # the temporary worktree is gone
    assert not git(gone_run.repo, "status", "--porcelain")


def test_a_rebuilt_image_with_another_lock_runs_nothing(gone_run):
    edited = f"{gone_run.run_id}-otherlock"
    shutil.copytree(gone_run.outputs / gone_run.run_id, gone_run.outputs / edited)
    record = manifest(gone_run.outputs / edited)
    record["environment"]["lock_sha256"] = "0" * 64
    (gone_run.outputs / edited / "manifest.json").write_text(json.dumps(record))
    before = set(gone_run.outputs.iterdir())

    result = gone_run.reproduce(edited)
    assert_one_line_error(result, "lock_sha256 000000000000 -> ", "nothing was run")
    assert "code_sha256" not in result.stderr
    assert set(gone_run.outputs.iterdir()) == before


def test_a_run_from_uncommitted_changes_is_not_rebuilt(gone_run):
    edited = f"{gone_run.run_id}-dirty"
    shutil.copytree(gone_run.outputs / gone_run.run_id, gone_run.outputs / edited)
    record = manifest(gone_run.outputs / edited)
    record["git"]["dirty"] = True
    (gone_run.outputs / edited / "manifest.json").write_text(json.dumps(record))

    result = gone_run.reproduce(edited)
    assert_one_line_error(result, "cannot be rebuilt", "uncommitted changes", "--image-archive")
    assert "rebuilding" not in result.stdout


def test_an_exported_tarball_is_loaded_and_its_id_checked(engine, gone_run):
    remove_image(engine, gone_run.image_id)  # whatever an earlier test left
    other = f"{gone_run.run_id}-otherimage"
    shutil.copytree(gone_run.outputs / gone_run.run_id, gone_run.outputs / other)
    record = manifest(gone_run.outputs / other)
    record["image"]["id"] = "sha256:" + "e" * 64
    (gone_run.outputs / other / "manifest.json").write_text(json.dumps(record))

    result = gone_run.reproduce(gone_run.run_id, "--image-archive", str(gone_run.archive))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"loaded image {gone_run.image_id[:19]} of run {gone_run.run_id}" in result.stdout
    assert re.search(rf"^identical: \S+ reproduces {gone_run.run_id} ", result.stdout, re.M)
    assert "rebuilding" not in result.stdout

    refused = gone_run.reproduce(other, "--image-archive", str(gone_run.archive))
    assert_one_line_error(refused, f"holds {gone_run.image_id[:19]}", "not image sha256:eeeeeeeeeeee")

"""What trainbox makes belongs to the user who ran it: containers run as the caller's UID:GID.

As root every file is root's whatever the containers run as, so these checks prove nothing
there: a root session leaves the `ownership` tests out (tests/conftest.py) and runs them as
an unprivileged user in the docker group instead (the runner below; .ci/test-user-setup
makes the user). Run as any other user, they run directly.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

import docker
from app import settings
from app.launch.certs import find_ca_bundle
from tests.engine.service_support import Server, free_port
from tests.engine.test_compose import compose
from tests.engine.test_notebook import URL_PATTERN
from tests.helpers import copy_repo, skip_or_fail

pytestmark = pytest.mark.docker

OWNERSHIP = pytest.mark.ownership
TEST_USER_VAR = "TRAINBOX_TEST_USER"
PASSED_THROUGH = ("CI", "PIP_CERT", "TRAINBOX_CA_BUNDLE", "TRAINBOX_IMAGE_REPOSITORY", "DOCKER_HOST")
JUPYTER_READY = URL_PATTERN  # the line `invoke notebook` prints, as test_notebook reads it


def assert_all_owned_by_the_caller(*tops: Path) -> None:
    caller = (os.getuid(), os.getgid())
    assert caller[0] != 0, "an ownership check as root proves nothing"
    for top in tops:
        paths = [top, *top.rglob("*")]
        strangers = [f"{p} {p.lstat().st_uid}:{p.lstat().st_gid}" for p in paths
                     if (p.lstat().st_uid, p.lstat().st_gid) != caller]  # fmt: skip
        assert len(paths) > 1 and not strangers, strangers[:10]


@OWNERSHIP
def test_a_notebook_saved_in_jupyterlab_is_the_callers(cpu_image, tmp_path):
    notebooks, data, outputs = tmp_path / "notebooks", tmp_path / "data", tmp_path / "outputs"
    for folder in (notebooks, data, outputs):
        folder.mkdir()
    server = Server(["notebook", "--notebook-dir", str(notebooks), "--data-dir", str(data),
                     "--output-dir", str(outputs), "--port", str(free_port())], JUPYTER_READY)  # fmt: skip
    try:
        saved = requests.put(
            # The file browser's root holds notebooks/ (read-write), outputs/ and data/.
            f"http://127.0.0.1:{server.port}/api/contents/notebooks/mine.ipynb",
            json={"type": "notebook", "format": "json",
                  "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}},
            headers={"Authorization": f"token {server.match.group('token')}"},
            timeout=30,
        )  # fmt: skip
        assert saved.status_code in (200, 201), saved.text
    finally:
        assert server.interrupt() == 130, server.output[-2000:]
    assert (notebooks / "mine.ipynb").is_file()
    assert_all_owned_by_the_caller(notebooks)


@OWNERSHIP
def test_compose_writes_data_and_outputs_as_the_uid_in_its_env(cpu_image, tmp_path):
    data, outputs = tmp_path / "data", tmp_path / "outputs"
    data.mkdir()
    outputs.mkdir()
    env = {"UID": str(os.getuid()), "GID": str(os.getgid()), "TRAINBOX_DATA_DIR": str(data),
           "TRAINBOX_OUTPUT_DIR": str(outputs), "TRAINBOX_TRAIN_ARGS": "--set training.epochs=1 "
           "--set model.conv_filters=[4] --set model.dense_units=8 --set data.image_size=[8,8]"}  # fmt: skip
    project = f"trainbox-test-{uuid.uuid4().hex[:8]}"
    try:
        run = compose("run", "--rm", "train", env=env, project=project)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        compose("down", "--remove-orphans", "--timeout", "5", env=env, project=project)
    assert list(outputs.glob("*/manifest.json"))
    assert_all_owned_by_the_caller(data, outputs)


def ownership_tests() -> list[str]:
    marked = {name: getattr(value, "pytestmark", []) for name, value in globals().items()}
    return [name for name, marks in marked.items() if any(mark.name == "ownership" for mark in marks)]


def unprivileged_user() -> pwd.struct_passwd:
    name = os.environ.get(TEST_USER_VAR, "trainbox-ci")
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        skip_or_fail(f"no user {name} for the ownership tests: run .ci/test-user-setup as root")
    if grp.getgrnam("docker").gr_gid not in os.getgrouplist(name, user.pw_gid):
        skip_or_fail(f"{name} is not in the docker group: run .ci/test-user-setup as root")
    if not (Path(user.pw_dir) / "venv" / "bin" / "python").exists():
        skip_or_fail(f"{name} has no ~/venv with the host requirements: run .ci/test-user-setup as root")
    return user


@pytest.mark.ownership_runner
def test_the_ownership_tests_pass_as_an_unprivileged_user(engine, cpu_image):
    user = unprivileged_user()
    workdir = Path(tempfile.mkdtemp(prefix="trainbox-ownership-"))  # root's pytest tmp is 0700
    repository = f"{settings.IMAGE_REPOSITORY}-ownership-{uuid.uuid4().hex[:8]}"
    try:
        clone = copy_repo(workdir / "trainbox")
        subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(workdir)], check=True)
        python = Path(user.pw_dir) / "venv" / "bin" / "python"
        env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
        env.update(PATH=f"{python.parent}:/usr/bin:/bin", HOME=user.pw_dir, USER=user.pw_name)
        # Its own tags: the runner's `invoke build` never replaces the image the other tests hold.
        env["TRAINBOX_IMAGE_REPOSITORY"] = repository
        bundle = find_ca_bundle()  # what root's builds trust, wherever root's pip keeps it
        if bundle is not None and "TRAINBOX_CA_BUNDLE" not in env:
            env["TRAINBOX_CA_BUNDLE"] = str(bundle)
        result = subprocess.run(
            [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "-m", "ownership",
             "tests/engine/test_ownership.py"],
            cwd=clone, env=env, capture_output=True, text=True, timeout=1800, check=False,
            user=user.pw_uid, group=user.pw_gid, extra_groups=os.getgrouplist(user.pw_name, user.pw_gid),
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for image in engine.images.list(name=repository):
            for tag in image.tags:
                with contextlib.suppress(docker.errors.APIError):  # still used: the assert below says why
                    engine.images.remove(tag)
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) == len(ownership_tests()), result.stdout[-3000:]
    assert not re.search(r"\d+ skipped", result.stdout), result.stdout[-3000:]

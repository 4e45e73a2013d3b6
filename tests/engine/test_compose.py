"""docker-compose.yml with the real Compose v2 and engine: valid, hardened like invoke, trains."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid

import pytest
import requests

from app import manifest, settings
from app.launch import containers
from tests.engine.service_support import free_port, wait_for_http
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.docker

SERVICES = ("data", "train", "notebook", "tensorboard", "test", "train-gpu", "notebook-gpu")


# The images the tests built (TRAINBOX_IMAGE_REPOSITORY may rename them), not whatever trainbox:cpu is.
IMAGES = {"TRAINBOX_IMAGE": settings.image_tag(), "TRAINBOX_GPU_IMAGE": settings.image_tag(gpu=True)}


def compose(*args: str, env: dict | None = None, project: str | None = None, timeout: int = 900):
    command = ["docker", "compose", "--project-directory", str(REPO_ROOT)]
    if project:
        command += ["-p", project]
    return subprocess.run(
        [*command, *args],
        cwd=REPO_ROOT,
        env={**os.environ, **IMAGES, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def project(no_leftovers):
    """A throwaway Compose project name; `down` always runs, then no_leftovers checks the engine."""
    name = f"trainbox-test-{uuid.uuid4().hex[:8]}"
    yield name
    down = compose(
        "--profile",
        "notebook",
        "--profile",
        "tensorboard",
        "down",
        "--remove-orphans",
        "--volumes",
        "--timeout",
        "5",
        project=name,
    )
    assert down.returncode == 0, down.stderr


@pytest.fixture
def dirs(tmp_path):
    data, outputs = tmp_path / "data", tmp_path / "outputs"
    data.mkdir()
    outputs.mkdir()
    return {
        "UID": str(os.getuid()),
        "GID": str(os.getgid()),
        "TRAINBOX_DATA_DIR": str(data),
        "TRAINBOX_OUTPUT_DIR": str(outputs),
    }


def test_config_validates_with_every_profile():
    result = compose(
        "--profile",
        "notebook",
        "--profile",
        "tensorboard",
        "--profile",
        "test",
        "--profile",
        "gpu",
        "config",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == set(SERVICES)


def test_services_are_hardened_like_the_invoke_tasks():
    """The same user, init, privileges, capabilities and labels as containers.run_kwargs()."""
    env = {"UID": "4242", "GID": "4343"}
    result = compose(
        "--profile",
        "notebook",
        "--profile",
        "tensorboard",
        "--profile",
        "test",
        "--profile",
        "gpu",
        "config",
        "--format",
        "json",
        env=env,
    )
    services = json.loads(result.stdout)["services"]
    reference = containers.run_kwargs(containers.ContainerSpec(image="x", command=[], role="r"))
    for name, service in services.items():
        assert service["user"] == "4242:4343", name
        assert service["init"] is reference["init"], name
        assert service["security_opt"] == reference["security_opt"], name
        assert service["cap_drop"] == reference["cap_drop"], name
        assert service["pids_limit"] == reference["pids_limit"], name
        assert service["labels"]["trainbox.project"] == reference["labels"]["trainbox.project"], name
        mounts = {volume["target"]: volume.get("read_only", False) for volume in service.get("volumes", [])}
        for target in (t for t in mounts if t.endswith("/data") and name != "data"):  # also /lab/data
            assert mounts[target] is True, f"{name}: data must be read-only ({target})"
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name
        if name.endswith("-gpu"):
            devices = service["deploy"]["resources"]["reservations"]["devices"]
            assert devices[0]["capabilities"] == ["gpu"], name


def test_compose_run_train_exits_with_the_trainings_status(cpu_image, project, dirs):
    """`docker compose run --rm train`: data first (depends_on), then the run; its status is Compose's."""
    env = {**dirs, "TRAINBOX_TRAIN_ARGS": "--set training.epochs=1 --set model.conv_filters=[8]"}
    run = compose("run", "--rm", "train", env=env, project=project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    outputs = [name for name in os.listdir(dirs["TRAINBOX_OUTPUT_DIR"]) if not name.startswith(".")]
    assert len(outputs) == 1, outputs
    run_dir = os.path.join(dirs["TRAINBOX_OUTPUT_DIR"], outputs[0])
    record = manifest.read_manifest(run_dir)
    assert record["status"] == "completed" and record["epochs_completed"] == 1
    assert os.stat(run_dir).st_uid == os.getuid()

    # A bad override: Compose exits with the training's own status (2, a user error).
    bad = compose(
        "run", "--rm", "train", env={**env, "TRAINBOX_TRAIN_ARGS": "--set training.epochs=0"}, project=project
    )
    assert bad.returncode == 2, bad.stdout[-2000:] + bad.stderr[-2000:]
    assert "training.epochs" in bad.stdout + bad.stderr


def test_plain_compose_up_trains_the_default_config_service(project, dirs):
    """`docker compose up` (no flags): data is written, `train` runs; Compose itself exits 0."""
    env = {**dirs, "TRAINBOX_TRAIN_ARGS": "--set training.epochs=1 --set model.conv_filters=[8]"}
    up = compose("up", env=env, project=project)
    assert up.returncode == 0, up.stderr[-3000:]
    assert "train-1 exited with code 0" in up.stdout + up.stderr
    (run,) = [name for name in os.listdir(dirs["TRAINBOX_OUTPUT_DIR"]) if not name.startswith(".")]
    assert manifest.read_manifest(os.path.join(dirs["TRAINBOX_OUTPUT_DIR"], run))["status"] == "completed"
    assert os.path.isdir(os.path.join(dirs["TRAINBOX_DATA_DIR"], "digits"))


def test_compose_notebook_needs_its_token_and_binds_localhost(project, dirs, tmp_path):
    port = free_port()
    token = uuid.uuid4().hex
    env = {**dirs, "NOTEBOOK_PORT": str(port), "JUPYTER_TOKEN": token}
    up = compose("--profile", "notebook", "up", "-d", "notebook", env=env, project=project, timeout=300)
    assert up.returncode == 0, up.stderr
    ps = compose("--profile", "notebook", "ps", "--format", "json", "notebook", env=env, project=project)
    published = [p for line in ps.stdout.splitlines() for p in json.loads(line)["Publishers"]]
    assert published and all(p["URL"] == "127.0.0.1" for p in published if p["PublishedPort"]), published
    url = f"http://127.0.0.1:{port}/api/status"
    assert wait_for_http(url, timeout_s=120).status_code == 403
    assert requests.get(url, params={"token": token}, timeout=10).status_code == 200
    # The file browser's root holds the three folders, as with `invoke notebook`.
    root = requests.get(f"http://127.0.0.1:{port}/api/contents", params={"token": token}, timeout=10)
    assert {item["name"] for item in root.json()["content"]} == {"data", "notebooks", "outputs"}


def test_missing_data_dir_is_an_error_not_a_root_owned_folder(cpu_image, project, dirs, tmp_path):
    missing = tmp_path / "nowhere"
    up = compose(
        "up",
        "--exit-code-from",
        "train",
        env={**dirs, "TRAINBOX_DATA_DIR": str(missing)},
        project=project,
        timeout=120,
    )
    assert up.returncode != 0
    # The engine refuses the bind mount, naming the folder (not some other failure on the way).
    assert re.search(rf"bind source path does not exist: {re.escape(str(missing))}", up.stderr), up.stderr
    assert not missing.exists()


def test_compose_test_service_runs_the_image_tests(cpu_image, project, dirs):
    """`docker compose --profile test run --rm test`: collects in the image, and its status is pytest's."""
    one = {**dirs, "TRAINBOX_TEST_ARGS": "-k every_label_names_the_folder"}
    run = compose("--profile", "test", "run", "--rm", "test", env=one, project=project)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert re.search(r"\b1 passed, \d+ deselected\b", output), output[-3000:]
    none = {**dirs, "TRAINBOX_TEST_ARGS": "-k no_test_is_called_this"}
    nothing = compose("--profile", "test", "run", "--rm", "test", env=none, project=project)
    assert nothing.returncode == 5, nothing.stdout[-2000:]  # pytest's "no tests collected"

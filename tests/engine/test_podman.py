"""trainbox on real Podman, through its Docker-compatible API (README, section Podman).

Both modes: rootful (as root) and rootless (as the unprivileged user .ci/podman-setup
makes). Each gets its own `podman system service`, started here and stopped at the end,
and the session's CPU image, exported once by `invoke export` and loaded into its store.
Every command is the real `invoke` CLI run as that user. The weights are compared with a
Docker run of the same config in the same session: same image, same config, same weights.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageDraw

import docker
from app import settings
from tests.engine.service_support import free_port
from tests.engine.slurm_cluster import missing_tools, running_cluster
from tests.helpers import REPO_ROOT, assert_one_line_error, copy_repo, invoke, skip_or_fail

pytestmark = [pytest.mark.docker, pytest.mark.podman]

PODMAN_USER = "trainbox-podman"  # made by .ci/podman-setup, with its Python in ~/venv
SERVICE_START_S = 30
TINY = [
    "--set", "data.train=photos/train", "--set", "data.test=photos/test", "--set", "data.color_mode=rgb",
    "--set", "data.image_size=[8,8]", "--set", "model.conv_filters=[4]", "--set", "model.dense_units=8",
    "--set", "training.epochs=2", "--set", "training.batch_size=8",
]  # fmt: skip
FRUIT = {"apple": (190, 40, 40), "banana": (230, 205, 60), "plum": (95, 40, 120)}
# One copy of the repository, owned by the unprivileged user, serves root's commands too.
ANY_OWNER = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}


def require(condition: bool, why: str) -> None:
    if not condition:
        skip_or_fail(why)


def write_photos(folder: Path, per_class: int, seed: int) -> None:
    """Small photos of fruit, as a user's folder holds them: mixed sizes, JPEG, PNG, RGBA PNG."""
    rng = random.Random(seed)
    for name, color in FRUIT.items():
        (folder / name).mkdir(parents=True)
        for index in range(per_class):
            size = (rng.randint(20, 90), rng.randint(20, 90))
            tint = tuple(min(255, max(0, channel + rng.randint(-35, 35))) for channel in color)
            photo = Image.new("RGB", size, (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)))
            box = [rng.randint(0, size[0] // 3), rng.randint(0, size[1] // 3)]
            ImageDraw.Draw(photo).ellipse([*box, size[0] - box[0], size[1] - box[1]], fill=tint)
            if index % 3 == 0:
                photo.save(folder / name / f"{name}-{index}.jpg", quality=85)
            elif index % 3 == 1:
                photo.save(folder / name / f"{name}-{index}.png")
            else:
                photo.convert("RGBA").save(folder / name / f"{name}-{index}.png")


@dataclass
class Workspace:
    """Everything both users need to read: a committed copy of the repository, the photos,
    the exported image; per-user folders are made by `folder`."""

    root: Path
    repo: Path
    data: Path
    export: Path

    def folder(self, name: str, owner: Podman) -> Path:
        path = self.root / name
        path.mkdir()
        os.chown(path, owner.uid, owner.gid)
        return path


@dataclass
class Podman:
    """One Podman mode: who runs it, its API service, the CLI as that user."""

    mode: str  # "rootful" or "rootless"
    uid: int
    gid: int
    home: str
    python: str  # that user's interpreter with the host requirements
    log: Path
    service: subprocess.Popen | None = None
    loaded: list[str] = field(default_factory=list)

    @property
    def rootless(self) -> bool:
        return self.mode == "rootless"

    @property
    def socket(self) -> Path:
        folder = Path(f"/run/user/{self.uid}") if self.rootless else Path("/run/trainbox-test")
        return folder / "trainbox-test-podman.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": self.home,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",  # output as a terminal shows it, line by line
            "DOCKER_HOST": self.url,
            "TRAINBOX_IMAGE_REPOSITORY": settings.IMAGE_REPOSITORY,
            **ANY_OWNER,
        }
        if self.rootless:
            env["XDG_RUNTIME_DIR"] = f"/run/user/{self.uid}"
        return {**env, **extra}

    def popen(self, command: list[str], cwd: Path, env: dict | None = None, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(command, cwd=cwd, env=self.env(**(env or {})), user=self.uid, group=self.gid,
                                extra_groups=[], umask=0o022, **kwargs)  # fmt: skip

    def run(self, command: list[str], cwd: Path, env: dict | None = None, timeout: float = 900):
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        with self.popen(command, cwd, env, **pipes) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def invoke(self, *args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
        return self.run([self.python, "-m", "invoke", *args], cwd, timeout=timeout)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=600)

    def start(self) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            command = ["podman", "system", "service", "--time=0", self.url]
            self.service = self.popen(command, Path("/"), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVICE_START_S
        while True:
            try:
                self.client().ping()
                return
            except docker.errors.DockerException:
                assert self.service.poll() is None, self.log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"no answer on {self.url}: {self.log.read_text()[-2000:]}"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.service and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()


def trained_run(result: subprocess.CompletedProcess) -> Path:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    return Path(re.findall(r"^run directory: (/\S+)$", result.stdout, re.M)[-1])


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def owners(folder: Path) -> set[tuple[int, int]]:
    return {(path.stat().st_uid, path.stat().st_gid) for path in [folder, *folder.rglob("*")]}


def project_containers(podman: Podman) -> list[str]:
    found = podman.client().containers.list(all=True, filters={"label": settings.PROJECT_LABEL})
    return [container.name for container in found]


@pytest.fixture(scope="module")
def rootless_user() -> pwd.struct_passwd:
    require(os.geteuid() == 0, "the Podman tests run as root (rootful) and as another user (rootless)")
    require(shutil.which("podman") is not None, "podman is not installed (.ci/run installs it)")
    try:
        user = pwd.getpwnam(PODMAN_USER)
    except KeyError:
        user = None
    require(user is not None, f"no user {PODMAN_USER}: run .ci/podman-setup")
    require(Path(user.pw_dir, "venv/bin/python").is_file(), f"no ~{PODMAN_USER}/venv: run .ci/podman-setup")
    return user


@pytest.fixture(scope="module")
def workspace(cpu_image, rootless_user) -> Workspace:
    """A folder both users can read: a clean committed copy of the repository (its own
    commit, so `invoke reproduce` can check it out), the photos, and the exported image."""
    root = Path(tempfile.mkdtemp(prefix="trainbox-podman-test-"))
    root.chmod(0o755)
    repo = copy_repo(root / "repo")
    git = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    (repo / ".git" / "index.lock").unlink(missing_ok=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "podman test snapshot"], check=True)
    subprocess.run(["chown", "-R", f"{rootless_user.pw_uid}:{rootless_user.pw_gid}", str(repo)], check=True)
    data = root / "data"
    write_photos(data / "photos" / "train", per_class=12, seed=1)
    write_photos(data / "photos" / "test", per_class=4, seed=2)
    export = root / "export"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "invoke", "export", "--output-dir", str(export)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"invoke export: {time.monotonic() - started:.1f} s")
    yield Workspace(root, repo, data, export)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def docker_digest(cpu_image, workspace) -> str:
    """The weights of the tiny config trained on Docker, from the same copy and image."""
    outputs = workspace.root / "docker-outputs"
    command = ["train", "--data-dir", str(workspace.data), "--output-dir", str(outputs), *TINY]
    result = invoke(*command, cwd=workspace.repo, env=ANY_OWNER)
    record = manifest(trained_run(result))
    assert record["image"]["id"] == cpu_image.id
    return record["weights_sha256"]


@pytest.fixture(scope="module", params=["rootful", "rootless"])
def podman(request, workspace, rootless_user, cpu_image) -> Podman:
    """The mode's API service, with the exported image loaded; `invoke clean --images` and
    a stopped service at the end."""
    if request.param == "rootless":
        user = rootless_user
        podman = Podman("rootless", user.pw_uid, user.pw_gid, user.pw_dir, f"{user.pw_dir}/venv/bin/python",
                        workspace.root / "rootless-service.log")  # fmt: skip
    else:
        podman = Podman("rootful", 0, 0, os.environ.get("HOME", "/root"), sys.executable,
                        workspace.root / "rootful-service.log")  # fmt: skip
    podman.start()
    try:
        started = time.monotonic()
        loaded = podman.run(
            ["podman", "load", "-i", str(workspace.export / "trainbox-cpu.tar")], workspace.root
        )
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        print(f"{podman.mode}: podman load in {time.monotonic() - started:.1f} s")
        assert podman.client().images.get(settings.image_tag()).id == cpu_image.id
        yield podman
        cleaned = podman.invoke("clean", "--images", cwd=workspace.repo)
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert f"removed image localhost/{settings.image_tag()}" in cleaned.stdout, cleaned.stdout
        assert not podman.client().images.list(filters={"reference": f"{settings.IMAGE_REPOSITORY}:*"})
    finally:
        podman.stop()


@pytest.fixture(scope="module")
def podman_run(podman, workspace) -> Path:
    """The tiny config trained on this Podman through `invoke train`, as its user."""
    outputs = workspace.folder(f"{podman.mode}-outputs", podman)
    started = time.monotonic()
    result = podman.invoke("train", "--data-dir", str(workspace.data), "--output-dir", str(outputs), *TINY,
                           cwd=workspace.repo)  # fmt: skip
    print(f"{podman.mode}: invoke train in {time.monotonic() - started:.1f} s")
    return trained_run(result)


def test_doctor_names_podman_and_its_mode(podman, workspace):
    result = podman.invoke("doctor", cwd=workspace.repo, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    engine_line = rf"OK   container engine: reachable, Podman \d+\.\d+\.\d+ \({podman.mode}, API"
    assert re.search(engine_line, result.stdout), result.stdout
    if podman.rootless and podman.client().info().get("CgroupVersion") == "1":
        assert "WARN resource limits: rootless Podman on cgroup v1 cannot limit containers" in result.stdout


def test_training_gives_dockers_weights_and_the_users_files(podman, podman_run, docker_digest, cpu_image):
    record = manifest(podman_run)
    assert record["status"] == "completed" and record["epochs_completed"] == 2
    assert record["image"]["id"] == cpu_image.id
    assert record["image"]["tag"] == settings.image_tag()
    assert record["weights_sha256"] == docker_digest
    assert owners(podman_run) == {(podman.uid, podman.gid)}  # rootless: container root is the user
    assert not project_containers(podman)


ROOTLESS_ONLY = pytest.mark.parametrize("podman", ["rootless"], indirect=True)
ROOTFUL_ONLY = pytest.mark.parametrize("podman", ["rootful"], indirect=True)


@ROOTLESS_ONLY  # the re-run is one more training: once is enough, in the mode that differs most
def test_reproduce_is_identical(podman, podman_run, workspace):
    result = podman.invoke("reproduce", podman_run.name, "--output-dir", str(podman_run.parent),
                           "--data-dir", str(workspace.data), cwd=workspace.repo)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    digest = manifest(podman_run)["weights_sha256"]
    assert f"reproduces {podman_run.name} (weights_sha256 {digest})" in result.stdout
    assert not project_containers(podman)


def listening_addresses(port: int) -> set[str]:
    """The host's IPv4 addresses with a listening TCP socket on `port` (/proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@contextlib.contextmanager
def serving(podman: Podman, workspace: Workspace, task: str, *args: str) -> Iterator[re.Match]:
    """`invoke notebook|tensorboard --port P ...` as the mode's user until Ctrl-C; yields the
    match of its "is ready" line. At the end: exit 130 and no container left."""
    port = free_port()
    command = [podman.python, "-m", "invoke", task, "--port", str(port), *args]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    process = podman.popen(command, workspace.repo, **output)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    ready = rf"is ready: open\s+(?P<url>http://127\.0\.0\.1:{port}/\S*)"
    try:
        deadline = time.monotonic() + 180
        while not (found := re.search(ready, "".join(lines))):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.3)
        # Published by the engine (rootful) or bound by the server itself (rootless): loopback only.
        assert listening_addresses(port) == {settings.LOCALHOST}
        yield found
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=60)
    assert status == 130, "".join(lines)
    assert not project_containers(podman)


def test_notebook_answers_with_its_token_on_localhost_and_saves_as_the_user(podman, workspace, podman_run):
    notebooks = workspace.folder(f"{podman.mode}-notebooks", podman)
    folders = ["--notebook-dir", str(notebooks), "--data-dir", str(workspace.data)]
    with serving(podman, workspace, "notebook", *folders, "--output-dir", str(podman_run.parent)) as ready:
        url, token = re.fullmatch(r"(http://[^/]+)/\S*\?token=([\w-]+)", ready["url"]).groups()
        assert requests.get(f"{url}/api/status", params={"token": token}, timeout=10).status_code == 200
        assert requests.get(f"{url}/api/status", timeout=10).status_code == 403
        text_file = {"type": "file", "format": "text", "content": "saved from the browser\n"}
        saved = requests.put(
            f"{url}/api/contents/notebooks/saved.txt", params={"token": token}, json=text_file, timeout=10
        )
        assert saved.status_code == 201, saved.text
    assert owners(notebooks / "saved.txt") == {(podman.uid, podman.gid)}


@ROOTLESS_ONLY  # rootful publishes the port as for the notebook; rootless binds it itself
def test_tensorboard_shows_the_runs_on_localhost(podman, workspace, podman_run):
    with serving(podman, workspace, "tensorboard", "--output-dir", str(podman_run.parent)) as ready:
        deadline = time.monotonic() + 60
        while podman_run.name not in (runs := requests.get(f"{ready['url']}data/runs", timeout=10).text):
            assert time.monotonic() < deadline, runs
            time.sleep(1)


@pytest.fixture(scope="module")
def slurm(workspace):
    require(not missing_tools(), f"Debian's slurm-wlm + munge are missing: {missing_tools()}")
    # In the workspace: the unprivileged user's sbatch must read its slurm.conf.
    with running_cluster(workspace.root / "slurm", port_base=16917) as cluster:
        yield cluster


def test_batch_script_with_podman_gives_dockers_weights(podman, workspace, slurm, docker_digest, cpu_image):
    jobs = workspace.folder(f"{podman.mode}-slurm", podman)
    outputs = jobs / "outputs"
    env = {"SLURM_CONF": str(slurm.conf), "TRAINBOX_RUNTIME": "podman", "TRAINBOX_IMAGE": cpu_image.id,
           "TRAINBOX_DATA_DIR": str(workspace.data), "TRAINBOX_OUTPUT_DIR": str(outputs)}  # fmt: skip
    # Submitted by the mode's user: the job runs as that user, with its own Podman.
    submitted = podman.run(["sbatch", "--parsable", str(workspace.export / "trainbox-cpu.sbatch"), *TINY],
                           jobs, env=env, timeout=60)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    state = slurm.wait(job, timeout=600)
    log = (jobs / f"trainbox-{job}.out").read_text()
    assert state == "COMPLETED", log[-4000:] + slurm.logs()
    run_dir = outputs / f"slurm-{job}"
    record = manifest(run_dir)
    assert record["status"] == "completed" and record["image"]["id"] == cpu_image.id
    assert record["weights_sha256"] == docker_digest
    assert owners(run_dir) == {(podman.uid, podman.gid)}
    assert not project_containers(podman)  # --rm


def test_what_podman_would_ignore_is_refused_in_one_line(podman, workspace):
    outputs = workspace.folder(f"{podman.mode}-refused", podman)
    refusals = [("--gpu", "ignores GPU requests made through its Docker API")]
    if podman.rootless and podman.client().info().get("CgroupVersion") == "1":
        refusals += [("--cpus=1", "rootless Podman on cgroup v1 cannot limit"),
                     ("--memory=1g", "rootless Podman on cgroup v1 cannot limit")]  # fmt: skip
    for option, why in refusals:
        command = ["train", option, "--data-dir", str(workspace.data), "--output-dir", str(outputs), *TINY]
        result = podman.invoke(*command, cwd=workspace.repo, timeout=120)
        assert result.returncode == 2
        assert_one_line_error(result, option.split("=")[0], why)
    assert not list(outputs.iterdir()) and not project_containers(podman)


@ROOTLESS_ONLY
def test_two_workers_share_a_namespace_without_a_network(podman, workspace):
    outputs = workspace.folder(f"{podman.mode}-workers", podman)
    command = [
        "train",
        "--workers",
        "2",
        "--data-dir",
        str(workspace.data),
        "--output-dir",
        str(outputs),
        *TINY,
    ]
    result = podman.invoke(*command, cwd=workspace.repo)
    record = manifest(trained_run(result))
    assert record["status"] == "completed" and record["cluster"]["workers"] == 2
    assert "[worker 1] " in result.stdout
    runs = [path.name for path in outputs.iterdir() if not path.name.startswith(".")]  # not the .cache
    assert runs == [record["run_id"]]  # only the chief writes a run directory
    assert not project_containers(podman)
    assert not podman.client().networks.list(filters={"label": settings.PROJECT_LABEL})


OUT_OF_MEMORY = """
import sys
from app.launch import containers
from app.launch.errors import TrainboxError, boundary
touch_400_mb = "b = bytearray(400 * 2**20); b[::4096] = bytes(len(b) // 4096)"
spec = containers.ContainerSpec(image=sys.argv[1], command=["python", "-c", touch_400_mb], role="test",
                                limits=containers.Limits(memory="128m"))
try:
    with boundary():
        sys.exit(containers.run_foreground(spec))
except TrainboxError as error:
    sys.exit(f"trainbox: {error}")
"""


@ROOTFUL_ONLY  # rootless on cgroup v1 cannot limit memory at all
def test_a_kill_for_memory_is_called_probable_where_podman_does_not_report_it(podman, workspace, cpu_image):
    result = podman.run([podman.python, "-c", OUT_OF_MEMORY, cpu_image.id], workspace.repo, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr  # sys.exit(message) exits 1
    assert (
        "killed (exit 137) under its memory limit 128m, probably for running out of memory" in result.stderr
    )
    assert not project_containers(podman)

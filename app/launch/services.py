"""`invoke notebook` and `invoke tensorboard`: long-running servers in the image.

Both publish on 127.0.0.1 only unless the user asks for another address (with a
warning), run as the invoking user, stay in the foreground and are removed on Ctrl-C.
JupyterLab gets a fresh random token, handed over in a file so that it appears in
neither the container's command line nor its environment (`docker inspect`).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app import settings
from app.launch import containers, engines, images
from app.launch.errors import TrainboxError
from app.launch.folders import ensure_writable_dir, resolve_dir
from app.launch.ports import check_listen, choose_port, display_host

READY_TIMEOUT_S = 120
TOKEN_FILE_IN_CONTAINER = "/run/trainbox/jupyter_token"
LAB_START_PATH = "/lab/tree/" + settings.LAB_NOTEBOOKS.removeprefix(settings.LAB_ROOT + "/")


@dataclass(frozen=True)
class ServiceRequest:
    port: int | None = None  # None: the default port, or the next free one
    listen: str = settings.LOCALHOST
    gpu: bool = False
    image: str | None = None
    data_dir: str | None = None
    output_dir: str | None = None
    notebook_dir: str | None = None
    limits: containers.Limits = field(default_factory=containers.Limits)


def wait_until_ready(
    url: str, timeout_s: float = READY_TIMEOUT_S, stop: threading.Event | None = None
) -> bool:
    """True once `url` answers HTTP at all (any status): the server is listening."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


@contextmanager
def announce_when_ready(probe_url: str, message: str, echo=print):
    """Print `message` from a background thread once the server answers; quiet if it never does."""
    stop = threading.Event()

    def watch():
        if wait_until_ready(probe_url, stop=stop) and not stop.is_set():
            echo(message)

    watcher = threading.Thread(target=watch, name="trainbox-ready", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()


def _server_dirs(request: ServiceRequest) -> tuple[Path, Path]:
    data_dir = resolve_dir(request.data_dir, settings.DEFAULT_DATA_DIR)
    output_dir = resolve_dir(request.output_dir, settings.DEFAULT_OUTPUT_DIR)
    # Created here, by the user, so the engine never creates them root-owned.
    ensure_writable_dir(output_dir, "output directory")
    if not data_dir.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir, output_dir


@contextmanager
def token_file(token: str):
    """The token in a private file (mode 600, the user's), mounted read-only, then deleted."""
    folder = Path(tempfile.mkdtemp(prefix="trainbox-token-"))
    path = folder / "jupyter_token"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token)
        yield path
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


def notebook_command(host_url: str, address: str, port: int) -> list[str]:
    return [
        "jupyter",
        "lab",
        f"--ip={address}",
        f"--port={port}",
        "--ServerApp.port_retries=0",  # the port asked for, or fail: never a neighbour silently
        "--no-browser",
        "--ServerApp.allow_root=True",  # CI runs as root, and the container runs as the caller
        f"--ServerApp.root_dir={settings.LAB_ROOT}",
        # Jupyter prints this (with the token) instead of the container-side address.
        f"--ServerApp.custom_display_url={host_url}",
    ]


def _binding(request: ServiceRequest, host_port: int, image_port: int) -> tuple[str, int]:
    """Where the server in the container listens (engines.server_binding): all of its own
    namespace's addresses, published on the host as request.listen:host_port by the engine,
    or, on the host's network (rootless Podman), request.listen:host_port itself."""
    return engines.server_binding(engines.current(), request.listen, host_port, image_port)


def notebook_spec(
    request: ServiceRequest, image_id: str, port: int, token_path: Path
) -> containers.ContainerSpec:
    data_dir, output_dir = _server_dirs(request)
    notebook_dir = resolve_dir(request.notebook_dir, settings.DEFAULT_NOTEBOOK_DIR)
    ensure_writable_dir(notebook_dir, "notebook directory")
    host_url = f"http://{display_host(request.listen)}:{port}"
    return containers.ContainerSpec(
        image=image_id,
        command=notebook_command(host_url, *_binding(request, port, settings.NOTEBOOK_PORT)),
        role="notebook",
        mounts=[
            # What is saved from the browser lands in the user's folders, owned by the user.
            containers.bind(str(notebook_dir), settings.LAB_NOTEBOOKS, read_only=False),
            containers.bind(str(output_dir), settings.LAB_OUTPUTS, read_only=False),
            containers.bind(str(data_dir), settings.LAB_DATA, read_only=True),
            # The same folders where training containers see them, so code written for
            # one (`/outputs/<run id>`) works in the other.
            containers.bind(str(data_dir), settings.DATA_MOUNT, read_only=True),
            containers.bind(str(output_dir), settings.OUTPUTS_MOUNT, read_only=False),
            containers.bind(str(token_path), TOKEN_FILE_IN_CONTAINER, read_only=True),
        ],
        # jupyter_server reads the token from this file: not in `docker inspect`, not in `ps`.
        environment={"JUPYTER_TOKEN_FILE": TOKEN_FILE_IN_CONTAINER},
        ports={f"{settings.NOTEBOOK_PORT}/tcp": (request.listen, port)},
        gpu=request.gpu,
        limits=request.limits,
    )


def tensorboard_spec(request: ServiceRequest, image_id: str, port: int) -> containers.ContainerSpec:
    _, output_dir = _server_dirs(request)
    address, bound_port = _binding(request, port, settings.TENSORBOARD_PORT)
    return containers.ContainerSpec(
        image=image_id,
        command=[
            "tensorboard",
            "--logdir",
            settings.OUTPUTS_MOUNT,
            "--host",
            address,
            "--port",
            str(bound_port),
            "--reload_interval",
            "5",
        ],
        role="tensorboard",
        mounts=[containers.bind(str(output_dir), settings.OUTPUTS_MOUNT, read_only=True)],
        ports={f"{settings.TENSORBOARD_PORT}/tcp": (request.listen, port)},
        limits=request.limits,
    )


def notebook(request: ServiceRequest, echo=print, on_ready: Callable[[str], None] | None = None) -> int:
    """JupyterLab in the image until Ctrl-C; returns the container's exit status."""
    containers.check_engine_supports(request.gpu, request.limits)
    listen = check_listen(request.listen, echo)
    port = choose_port(request.port, settings.NOTEBOOK_PORT, listen, echo)
    image = images.ensure_image(gpu=request.gpu, tag=request.image, echo=echo)
    token = secrets.token_urlsafe(32)
    # Opens with the file browser in notebooks/: a notebook made from the launcher lands there.
    url = f"http://{display_host(listen)}:{port}{LAB_START_PATH}?token={token}"
    with token_file(token) as path:
        spec = notebook_spec(request, image.id, port, path)
        echo(f"starting JupyterLab on {listen}:{port} (Ctrl-C stops and removes it)")
        message = f"\nJupyterLab is ready: open\n    {url}\n"
        with announce_when_ready(
            f"http://{display_host(listen)}:{port}/api", message, _ready_echo(echo, on_ready, url)
        ):
            return _checked(containers.run_foreground(spec, echo=echo), "JupyterLab")


def tensorboard(request: ServiceRequest, echo=print, on_ready: Callable[[str], None] | None = None) -> int:
    """TensorBoard over the output directory until Ctrl-C; returns the container's exit status."""
    listen = check_listen(request.listen, echo)
    port = choose_port(request.port, settings.TENSORBOARD_PORT, listen, echo)
    image = images.ensure_image(gpu=False, tag=request.image, echo=echo)
    url = f"http://{display_host(listen)}:{port}/"
    spec = tensorboard_spec(request, image.id, port)
    echo(
        f"starting TensorBoard over {resolve_dir(request.output_dir, settings.DEFAULT_OUTPUT_DIR)} "
        f"on {listen}:{port}"
    )
    message = f"\nTensorBoard is ready: open\n    {url}\n"
    with announce_when_ready(url, message, _ready_echo(echo, on_ready, url)):
        return _checked(containers.run_foreground(spec, echo=echo), "TensorBoard")


def _checked(status: int, server: str) -> int:
    """Ctrl-C (130) is how a server is meant to end; anything else failed, and says so."""
    if status not in (0, containers.EXIT_INTERRUPTED):
        raise TrainboxError(
            f"{server} stopped on its own with exit status {status}: its log is above", status
        )
    return status


def _ready_echo(echo, on_ready, url):
    def say(message: str) -> None:
        echo(message)
        if on_ready:
            on_ready(url)

    return say

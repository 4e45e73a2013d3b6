"""`invoke notebook` and `invoke tensorboard`: long-running servers in the image.

Both publish on 127.0.0.1 only unless the user asks for another address (with a
warning), run as the invoking user, stay in the foreground and are removed on Ctrl-C.
JupyterLab gets a fresh random token, handed over in a file so that it appears in
neither the container's command line nor its environment (`docker inspect`).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import sys
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
from app.launch.errors import ENGINE_ERRORS, TrainboxError
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
    """True once `url` answers HTTP at all (any status): the server is listening.

    Asked directly, never through a proxy: urllib honours http_proxy, and a user behind a
    proxy whose no_proxy lacks 127.0.0.1 would send the probe to a proxy that cannot reach
    this machine's loopback address (never ready, or a proxy's error page taken for ready).
    """
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        try:
            with direct.open(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            time.sleep(0.5)
    return False


class Readiness:
    """Watches a server's container from a thread: says `message` once `url` answers; if it
    never does within `timeout_s`, stops the container (the user would never see the URL, and
    a server nobody can find must not stay behind)."""

    def __init__(self, url: str, message: str, say: Callable[[str], None], timeout_s: float):
        self.url, self.message, self.timeout_s = url, message, timeout_s
        self._say = say
        self._closed = threading.Event()
        self._gave_up = threading.Event()

    @property
    def gave_up(self) -> bool:
        return self._gave_up.is_set()

    def watch(self, container) -> None:
        threading.Thread(target=self._run, args=(container,), name="trainbox-ready", daemon=True).start()

    def close(self) -> None:
        self._closed.set()

    def _run(self, container) -> None:
        if wait_until_ready(self.url, self.timeout_s, stop=self._closed):
            if not self._closed.is_set():
                self._say(self.message)
        elif not self._closed.is_set():
            self._gave_up.set()
            # Ends the log stream, and run_foreground removes it. An engine that cannot stop
            # it fails the log stream too, which removes it the same way: no traceback here.
            with contextlib.suppress(*ENGINE_ERRORS):
                containers.stop(container)


def serve(
    spec: containers.ContainerSpec,
    server: str,
    readiness: Readiness,
    echo=print,
) -> int:
    """A server's container in the foreground until Ctrl-C; its exit status (130 for Ctrl-C).

    Every way it ends removes the container (run_foreground); one that never answered is
    stopped first and reported in one line. Closing the terminal stops it too: a server left
    behind would hold its port and its token with nobody to see either.
    """
    try:
        status = containers.run_foreground(spec, echo=echo, on_start=readiness.watch, stop_on_hangup=True)
    finally:
        readiness.close()
    if readiness.gave_up:
        raise TrainboxError(
            f"{server} did not answer on {readiness.url} within {readiness.timeout_s:g} s, so it was "
            "stopped and removed: its log above says whether it started (`invoke doctor` checks the engine)"
        )
    return _checked(status, server)


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
        probe = f"http://{display_host(listen)}:{port}/api"
        readiness = Readiness(probe, message, _ready_echo(echo, on_ready, url), READY_TIMEOUT_S)
        return serve(spec, "JupyterLab", readiness, echo=echo)


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
    readiness = Readiness(url, message, _ready_echo(echo, on_ready, url), READY_TIMEOUT_S)
    return serve(spec, "TensorBoard", readiness, echo=echo)


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
        # Out now, not when the server next logs (it may never): said from a thread while
        # the logs go to sys.stdout.buffer, print's text waits in sys.stdout's own buffer
        # whenever stdout is not a terminal (`| tee log`, a test, CI without PYTHONUNBUFFERED).
        sys.stdout.flush()
        if on_ready:
            on_ready(url)

    return say

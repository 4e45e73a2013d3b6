"""`invoke notebook` against the real engine, a real JupyterLab, a real kernel and a real browser."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
import uuid
from pathlib import Path

import docker.errors
import pytest
import requests

from app import settings
from app.launch import containers, services
from app.launch.engine import client
from app.launch.errors import TrainboxError
from app.settings import NOTEBOOK_MOUNT as NOTEBOOK_DIR_IN_CONTAINER
from tests.engine.egress import attach_when_started
from tests.engine.service_support import (
    Server,
    assert_nothing_left,
    finished_run,
    free_port,
    project_objects,
    session_roots,
)
from tests.helpers import assert_gone_within, assert_one_line_error, invoke

pytestmark = pytest.mark.docker

URL_PATTERN = (
    r"JupyterLab is ready: open\s+"
    r"(?P<url>http://127\.0\.0\.1:(?P<port>\d+)/lab/tree/notebooks\?token=(?P<token>[\w-]+))"
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cpu_image):
    return finished_run(tmp_path_factory.mktemp("tiny-run"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_run, cpu_image):
    """One JupyterLab for the module, started like a user starts it; Ctrl-C'd at the end.

    A packet sniffer joins its network namespace the moment the container exists, before
    JupyterLab answers, and sees everything it sends from then on (`lab.egress`).
    """
    data_dir, output_dir, _ = tiny_run
    notebook_dir = tmp_path_factory.mktemp("notebooks")
    baseline = project_objects(session_roots(tmp_path_factory))
    running = {container.id for container in client().containers.list(ignore_removed=True)}
    sniffing = attach_when_started("notebook", cpu_image.id, running, mounting=str(notebook_dir))
    server = Server(
        [
            "notebook",
            "--notebook-dir",
            str(notebook_dir),
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(output_dir),
            "--port",  # a free one, not the default: other work on the engine may hold 8888
            str(free_port()),
        ],
        URL_PATTERN,
    )
    server.notebook_dir = notebook_dir
    server.baseline = baseline
    sniffing["thread"].join(timeout=60)
    assert "egress" in sniffing, sniffing.get("error")
    server.egress = sniffing["egress"]
    server.roots = session_roots(tmp_path_factory)
    yield server
    server.egress.remove()
    server.interrupt()


def api(lab: Server, path: str) -> str:
    return f"http://127.0.0.1:{lab.port}{path}"


def test_token_is_required(lab):
    token = lab.match.group("token")
    assert requests.get(api(lab, "/api/status"), timeout=10).status_code == 403
    assert requests.get(api(lab, "/api/status"), params={"token": "wrong"}, timeout=10).status_code == 403
    assert requests.get(api(lab, "/api/status"), params={"token": token}, timeout=10).status_code == 200
    assert requests.get(lab.match.group("url"), timeout=10).status_code == 200


def test_published_on_localhost_only_and_token_not_in_inspect(lab):
    container = lab.container("notebook")
    bindings = container.attrs["HostConfig"]["PortBindings"]
    assert bindings == {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(lab.port)}]}
    published = container.attrs["NetworkSettings"]["Ports"]["8888/tcp"]
    assert {entry["HostIp"] for entry in published} == {"127.0.0.1"}
    # The token is handed over in a file: not in the command line or the environment.
    assert lab.match.group("token") not in json.dumps(container.attrs)
    # Runs as the invoking user, hardened like every project container.
    assert container.attrs["Config"]["User"] == containers.invoking_user()
    assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    mounts = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
    assert mounts["/data"] is False and mounts["/outputs"] is True
    # The file browser's root: notebooks and runs writable, the data read-only.
    assert (mounts[settings.LAB_NOTEBOOKS], mounts[settings.LAB_OUTPUTS], mounts[settings.LAB_DATA]) == (
        True,
        True,
        False,
    )


def test_kernel_runs_tensorflow_and_app(lab):
    """Start a kernel through the REST API and execute code over the kernel protocol (websocket)."""
    import websocket

    headers = {"Authorization": f"token {lab.match.group('token')}"}
    kernel = requests.post(api(lab, "/api/kernels"), json={"name": "python3"}, headers=headers, timeout=30)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    try:
        socket_url = f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels"
        channel = websocket.create_connection(
            socket_url,
            header=[f"Authorization: token {lab.match.group('token')}"],
            timeout=120,
            suppress_origin=True,
        )
        code = (
            "import tensorflow as tf, app, app.train.explore\n"
            "print('TF', tf.__version__, 'APP', app.__file__, 'SUM', int(tf.reduce_sum(tf.range(10))))"
        )
        reply, output = execute(channel, code)
        channel.close()
    finally:
        requests.delete(api(lab, f"/api/kernels/{kernel_id}"), headers=headers, timeout=30)
    assert reply["status"] == "ok", reply
    assert "TF 2." in output and "APP /opt/trainbox/app/__init__.py" in output and "SUM 45" in output, output


def execute(channel, code: str) -> tuple[dict, str]:
    """Send one execute_request; return its execute_reply content and the stdout it printed."""
    session = uuid.uuid4().hex
    msg_id = uuid.uuid4().hex
    channel.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "session": session,
                    "username": "test",
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    output, reply, idle = [], None, False
    while reply is None or not idle:
        message = json.loads(channel.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream":
            output.append(message["content"]["text"])
        elif kind == "error":
            output.append("\n".join(message["content"]["traceback"]))
        elif kind == "execute_reply":
            reply = message["content"]
        elif kind == "status" and message["content"]["execution_state"] == "idle":
            idle = True
    return reply, "".join(output)


def test_saved_notebook_lands_in_notebooks_owned_by_user(lab):
    headers = {"Authorization": f"token {lab.match.group('token')}"}
    notebook = {
        "type": "notebook",
        "format": "json",
        "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    }
    saved = requests.put(
        api(lab, "/api/contents/notebooks/saved_from_browser.ipynb"),
        json=notebook,
        headers=headers,
        timeout=30,
    )
    assert saved.status_code in (200, 201), saved.text
    path = lab.notebook_dir / "saved_from_browser.ipynb"
    assert path.is_file()
    assert (path.stat().st_uid, path.stat().st_gid) == (os.getuid(), os.getgid())


def test_lab_in_headless_chromium_opens_a_runs_plot_and_asks_nothing_of_the_internet(
    lab, tiny_run, artifacts
):
    """A user's first minute: JupyterLab opens in notebooks/, the file browser's root holds
    data, notebooks and outputs, and a run's learning curves open from it; meanwhile the
    container sends nothing anywhere (no news feed, no update check, no PyPI lookups)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    _, _, run_id = tiny_run
    driver = chromium()
    try:
        driver.get(lab.match.group("url"))
        wait = WebDriverWait(driver, 120)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "jp-main-dock-panel")))
        wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".jp-Launcher")))
        assert "JupyterLab" in driver.title, driver.title
        crumbs = wait.until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".jp-BreadCrumbs"))
        )
        wait.until(lambda _: "notebooks" in crumbs.text)  # opened in the user's notebooks folder
        driver.find_element(By.CSS_SELECTOR, ".jp-BreadCrumbs-home").click()
        wait.until(lambda _: {"data", "notebooks", "outputs"} <= set(listed(driver)))

        def open_item(name: str) -> None:
            wait.until(lambda _: name in listed(driver))
            item = driver.find_element(By.XPATH, listing_item(name))
            ActionChains(driver).double_click(item).perform()

        for name in ("outputs", run_id, "learning_curves.png"):
            open_item(name)
        image = wait.until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".jp-ImageViewer img"))
        )
        wait.until(lambda _: driver.execute_script("return arguments[0].naturalWidth", image) > 0)
        assert driver.execute_script("return arguments[0].naturalWidth", image) == 1000
        time.sleep(10)  # lazy fetches (news, update check, extension listings) come after the page loads
        screenshot = Path(artifacts) / "jupyterlab-learning-curves.png"
        assert driver.save_screenshot(str(screenshot))
        print(f"screenshot: {screenshot}")
        assert "Jupyter news" not in driver.page_source
    finally:
        driver.quit()
    # What the UI asks the server for once a user lets it (news, updates, extension search):
    # a stock JupyterLab fetches jupyterlab.github.io and pypi.org for these; this one must not.
    token = {"token": lab.match.group("token")}
    for path in ("/lab/api/news", "/lab/api/update", "/lab/api/extensions?query=numpy&page=1&per_page=10"):
        assert requests.get(api(lab, path), params=token, timeout=60).status_code == 200, path
    time.sleep(2)
    sent = lab.egress.lines()
    assert sent == [], f"the notebook container reached out at start-up: {sent}"
    # The sniffer is not blind: a lookup and a connection from inside the container are seen.
    probe = (
        "import socket\n"
        "for attempt in (lambda: socket.getaddrinfo('egress-probe.example', 443),"
        " lambda: socket.create_connection(('192.0.2.1', 9), timeout=1)):\n"
        "    try: attempt()\n"
        "    except OSError: pass\n"
    )
    lab.container("notebook").exec_run(["python", "-c", probe])
    deadline = time.monotonic() + 10
    while not {"dns egress-probe.example", "tcp 192.0.2.1:9"} <= set(lab.egress.lines()):
        assert time.monotonic() < deadline, lab.egress.lines()
        time.sleep(0.2)


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,900",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(
        options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    )


def listing_item(name: str) -> str:
    return (
        "//li[contains(@class, 'jp-DirListing-item')]"
        f"[.//span[contains(@class, 'jp-DirListing-itemText')][normalize-space(.)='{name}']]"
    )


def listed(driver) -> list[str]:
    """The names the file browser shows now."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return [
            element.text.strip()
            for element in driver.find_elements(
                By.CSS_SELECTOR, ".jp-DirListing-item .jp-DirListing-itemText"
            )
        ]
    except StaleElementReferenceException:
        return []


def test_example_notebook_executes_in_the_image(tiny_run, cpu_image, tmp_path, artifacts):
    """nbclient inside the image runs notebooks/explore_run.ipynb top to bottom on a finished run."""
    data_dir, output_dir, run_id = tiny_run
    executed = tmp_path / "executed"
    executed.mkdir()
    script = (
        "import nbformat, nbclient\n"
        "nb = nbformat.read('explore_run.ipynb', as_version=4)\n"
        "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',"
        " resources={'metadata': {'path': '.'}}).execute()\n"
        "nbformat.write(nb, '/executed/explore_run.ipynb')\n"
    )
    status = containers.run_foreground(
        containers.ContainerSpec(
            image=cpu_image.id,
            command=["sh", "-c", f'cd {NOTEBOOK_DIR_IN_CONTAINER} && python -c "$0"', script],
            role="notebook-test",
            mounts=[
                containers.bind(str(data_dir), "/data", read_only=True),
                containers.bind(str(output_dir), "/outputs", read_only=True),
                containers.bind(str(executed), "/executed", read_only=False),
            ],
        )
    )
    assert status == 0
    notebook = json.loads((executed / "explore_run.ipynb").read_text())
    outputs = [
        output for cell in notebook["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]
    ]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert f"run: {run_id}" in text and "status: completed" in text
    assert "accuracy on" in text
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 2, "expected the learning curves and the prediction grid"
    shutil.copy(executed / "explore_run.ipynb", Path(artifacts) / "explore_run.executed.ipynb")


def test_busy_port_is_one_clear_line(tmp_path, no_leftovers):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = invoke(
            "notebook",
            "--port",
            str(port),
            "--output-dir",
            str(tmp_path / "out"),
            "--data-dir",
            str(tmp_path / "data"),
            timeout=120,
        )
    assert result.returncode == 2
    assert_one_line_error(result, f"port {port}", "already in use", "--port")


def test_a_server_that_never_answers_is_stopped_and_removed(cpu_image, engine, tmp_path, no_leftovers):
    """`invoke notebook` whose server never answers its readiness probe: the container is
    stopped and removed, and one line says so (the path invoke notebook and tensorboard take,
    services.serve, with a probe nothing answers and 5 s instead of 120 s)."""

    class Recorded(services.Readiness):
        def watch(self, container) -> None:
            self.container = container
            super().watch(container)

    said: list[str] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never listening: every probe is refused
        readiness = Recorded(f"http://127.0.0.1:{silent.getsockname()[1]}/api", "ready", said.append, 5)
        spec = containers.ContainerSpec(
            image=cpu_image.id,
            command=["sleep", "600"],  # a server that starts and never answers
            role="notebook",
            mounts=[containers.bind(str(tmp_path), "/scratch", read_only=False)],  # this test's
        )
        with pytest.raises(TrainboxError) as raised:
            services.serve(spec, "JupyterLab", readiness)
    assert "JupyterLab did not answer on http://127.0.0.1:" in str(raised.value), raised.value
    assert "within 5 s" in str(raised.value) and "\n" not in str(raised.value)
    assert said == [] and readiness.gave_up
    assert engine.containers.list(all=True, filters={"id": readiness.container.id}) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "terminal-closed"])
def test_sigterm_or_hangup_stops_and_removes_the_container(signum, tiny_run, tmp_path, tmp_path_factory):
    data_dir, output_dir, _ = tiny_run
    roots = session_roots(tmp_path_factory)
    baseline = project_objects(roots)
    server = Server(
        [
            "notebook",
            "--notebook-dir",
            str(tmp_path),
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(output_dir),
            "--port",
            str(free_port()),
        ],
        URL_PATTERN,
    )
    container = server.container("notebook")
    server.process.send_signal(signum)
    assert_gone_within(client(), container.id, containers.STOP_TIMEOUT_S + 2)
    status = server.process.wait(timeout=30)
    assert status == containers.EXIT_INTERRUPTED, server.output[-2000:]  # it ends as Ctrl-C does
    assert "Traceback" not in server.output
    assert_nothing_left(baseline, timeout_s=containers.STOP_TIMEOUT_S + 2, roots=roots)
    with pytest.raises(docker.errors.NotFound):
        container.reload()


def test_ctrl_c_stops_and_removes_the_container(lab):
    """Last in the module: Ctrl-C on `invoke notebook` leaves nothing of the project behind."""
    container = lab.container("notebook")
    lab.egress.remove()  # the test's own sniffer, not something `invoke notebook` left
    status = lab.interrupt()
    assert status == 130, lab.output[-2000:]
    assert "stopping" in lab.output
    assert_nothing_left(lab.baseline, roots=lab.roots)
    with pytest.raises(docker.errors.NotFound):
        container.reload()

"""How `invoke notebook` / `invoke tensorboard` learn that their server answers, and what they
do when it never does (the real servers and engine: tests/engine/test_notebook.py)."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from app.launch import containers, services
from tests.helpers import REPO_ROOT


@pytest.fixture
def answering_url():
    """A local HTTP server that answers every GET with 501 (any answer means: listening)."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_url():
    """A loopback port nothing listens on (bound, never listening: connections are refused)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}/api"


class FakeContainer:
    def __init__(self):
        self.stopped = threading.Event()

    def stop(self, timeout):
        self.stopped.set()


def test_the_probe_never_goes_through_the_users_proxy(answering_url, monkeypatch):
    """Behind a corporate proxy (http_proxy set, 127.0.0.1 not in no_proxy) urllib would ask
    the proxy for 127.0.0.1, which it cannot reach: the probe must go straight to the server."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://proxy.invalid:3128")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert services.wait_until_ready(answering_url, timeout_s=10)


def test_a_server_that_answers_is_announced_and_left_running(answering_url):
    said, container = [], FakeContainer()
    readiness = services.Readiness(answering_url, "ready", said.append, timeout_s=30)
    readiness.watch(container)
    deadline = time.monotonic() + 30
    while not said and time.monotonic() < deadline:
        time.sleep(0.05)
    readiness.close()
    assert said == ["ready"] and not readiness.gave_up and not container.stopped.is_set()


def test_a_server_that_never_answers_is_stopped_and_not_announced(silent_url):
    said, container = [], FakeContainer()
    readiness = services.Readiness(silent_url, "ready", said.append, timeout_s=1)
    readiness.watch(container)
    assert container.stopped.wait(timeout=30)
    assert readiness.gave_up and said == []


def test_closing_the_watch_stops_nothing(silent_url):
    """The server ended (Ctrl-C, or on its own) before it answered: nothing more to stop or say."""
    said, container = [], FakeContainer()
    readiness = services.Readiness(silent_url, "ready", said.append, timeout_s=1)
    readiness.close()
    readiness.watch(container)
    time.sleep(1.5)
    assert not readiness.gave_up and said == [] and not container.stopped.is_set()


def test_the_ready_line_reaches_a_pipe_while_the_server_still_runs(answering_url):
    """`invoke notebook | tee log`, or a test or CI reading its output: stdout is a pipe and
    Python buffers it (no PYTHONUNBUFFERED). The URL must arrive while the server runs, not
    when it next logs something (an idle Jupyter never does): the user needs it to connect."""
    script = (
        "import sys, time\n"
        "from app.launch import services\n"
        "say = services._ready_echo(print, None, sys.argv[1])\n"
        "services.Readiness(sys.argv[1], 'JupyterLab is ready', say, timeout_s=60).watch(object())\n"
        "sys.stdout.buffer.write(b'a log line\\n'); sys.stdout.flush()\n"
        "time.sleep(120)  # the server running, saying nothing more\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    child = subprocess.Popen(
        [sys.executable, "-c", script, answering_url],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend([child.stdout.readline() for _ in "12"]))
    reader.start()
    try:
        reader.join(timeout=60)
        running = child.poll() is None
    finally:
        child.kill()
        child.wait()
        reader.join()
    assert lines[:2] == ["a log line\n", "JupyterLab is ready\n"] and running, lines


def test_run_foreground_hands_the_started_container_to_its_watcher(monkeypatch):
    """on_start runs once the container has started, and the container is removed after."""
    events = []

    class Started:
        name = "trainbox-test"

        def logs(self, **kwargs):
            events.append("logs")
            return iter([])

        def wait(self):
            return {"StatusCode": 0}

        def remove(self, force):
            events.append("removed")

    started = Started()
    monkeypatch.setattr(containers, "start", lambda spec: started)
    spec = containers.ContainerSpec(image="unused", command=["true"], role="test")
    status = containers.run_foreground(spec, on_start=lambda container: events.append(container))
    assert status == 0 and events == [started, "logs", "removed"]


def test_servers_stop_when_the_terminal_closes_unless_nohup_said_otherwise():
    before = signal.getsignal(signal.SIGHUP)
    try:
        with containers.interruptible(hangup=True):
            assert signal.getsignal(signal.SIGHUP) not in (before, signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGHUP) == before
        with containers.interruptible():
            assert signal.getsignal(signal.SIGHUP) == before  # training: as before
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # `nohup invoke notebook`
        with containers.interruptible(hangup=True):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)

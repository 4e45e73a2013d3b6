"""Shared plumbing for the notebook / TensorBoard / Compose engine tests (no fakes).

A tiny finished run is trained once per test session through the real `invoke train`
path; servers are started through the real `invoke` CLI and stopped with Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from app import manifest
from app.launch.engine import client
from app.settings import PROJECT_LABEL
from tests.helpers import REPO_ROOT, invoke

TINY_OVERRIDES = ("training.epochs=2", "model.conv_filters=[8]", "model.dense_units=16")
START_TIMEOUT_S = 180

_finished: dict[str, Path] = {}


def finished_run(root: Path) -> tuple[Path, Path, str]:
    """(data_dir, output_dir, run_id) of a completed tiny run, trained once per session
    through `invoke train`, as a user would."""
    if "run" not in _finished:
        data_dir, output_dir = root / "data", root / "outputs"
        args = ["train", "--data-dir", str(data_dir), "--output-dir", str(output_dir)]
        for override in TINY_OVERRIDES:
            args += ["--set", override]
        result = invoke(*args)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        runs = [
            p for p in output_dir.iterdir() if (manifest.read_manifest(p) or {}).get("status") == "completed"
        ]
        assert len(runs) == 1, runs
        _finished.update(run=runs[0], data=data_dir)
    run_dir = _finished["run"]
    return _finished["data"], run_dir.parent, run_dir.name


def session_roots(tmp_path_factory) -> list[Path]:
    """What this test session's containers mount: its pytest temporary folders, the repository."""
    return [tmp_path_factory.getbasetemp(), REPO_ROOT]


def mounts_under(container, roots: list[Path]) -> bool:
    """The container bind-mounts something under one of `roots` (every container a test starts
    mounts its folders; others on the engine, e.g. another session's, mount theirs or none)."""
    sources = [Path(m["Source"]) for m in container.attrs.get("Mounts", []) if m.get("Type") == "bind"]
    return any(source.is_relative_to(root) for source in sources for root in roots)


def project_objects(roots: list[Path] | None = None) -> dict[str, set[str]]:
    """Ids of every container, network and volume that carries the project label; with
    `roots`, only the containers of this session (other work on the engine is not ours)."""
    engine = client()
    label = {"label": f"{PROJECT_LABEL}=trainbox"}
    containers = engine.containers.list(all=True, filters=label, ignore_removed=True)
    return {
        "containers": {c.id for c in containers if roots is None or mounts_under(c, roots)},
        "networks": {n.id for n in engine.networks.list(filters=label)},
        "volumes": {v.id for v in engine.volumes.list(filters=label)},
    }


def assert_nothing_left(
    before: dict[str, set[str]], timeout_s: float = 20, roots: list[Path] | None = None
) -> None:
    """No project container/network/volume beyond those that existed before the test.

    (On CI `before` is empty; the baseline only keeps concurrent local runs from failing this.)
    """
    deadline = time.monotonic() + timeout_s
    while True:
        extra = {kind: ids - before[kind] for kind, ids in project_objects(roots).items()}
        if not any(extra.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not any(extra.values()), f"project objects left behind: {extra}"


class Server:
    """`invoke notebook|tensorboard ...` as a child process, its output collected live.

    Its stdout is a pipe, as in `invoke notebook | tee log`, and Python buffers it as it would
    there (PYTHONUNBUFFERED, if this session has it, is not handed on): the ready line must
    arrive anyway. A server that never says it is ready is Ctrl-C'd before the test fails, so
    its container does not outlive the test.
    """

    def __init__(self, args: list[str], ready_pattern: str):
        self.lines: list[str] = []
        nohup = signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        self.process = subprocess.Popen(
            [sys.executable, "-m", "invoke", *args],
            cwd=REPO_ROOT,
            env={key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # As from a terminal, even if this session ignores SIGHUP (nohup): a hangup stops it.
            preexec_fn=_hangup_as_in_a_terminal if nohup else None,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.match = self.wait_for(ready_pattern)
        except BaseException:
            self.interrupt()
            raise

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            print(line, end="", file=sys.stderr)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"server exited ({self.process.returncode}):\n{self.output}")
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout_s} s:\n{self.output}")

    def container(self, role: str):
        found = client().containers.list(
            filters={"label": [f"{PROJECT_LABEL}=trainbox", f"trainbox.role={role}"]}
        )
        mine = [c for c in found if str(self.port) in str(c.attrs["HostConfig"]["PortBindings"])]
        assert len(mine) == 1, [c.name for c in found]
        return mine[0]

    @property
    def port(self) -> int:
        return int(self.match.group("port"))

    def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C, as a user would press it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def _hangup_as_in_a_terminal() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def wait_for_http(url: str, timeout_s: float = 60, **kwargs) -> requests.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return requests.get(url, timeout=5, **kwargs)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

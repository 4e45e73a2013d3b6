"""`invoke build --gpu` in the background, so the GPU image's download, install and layer
commits overlap with the tests that come before the GPU tests (pytest runs those last).

The build is started once the CPU image exists (its `system` stage and apt layers are then
in the cache, so the two builds do not make them twice) and only when the session selected
a GPU test. The GPU tests' fixture waits for it; without one (a session of other tests,
or a failed CPU build) it builds in the foreground as before.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app import settings
from tests.helpers import REPO_ROOT

# A guard against a hang, not a speed check: the cold GPU build takes 8-12 min here.
BUILD_TIMEOUT_S = 3600


@dataclass
class BackgroundBuild:
    """One `invoke build ARGS...` running in the background, its output in `log`."""

    args: tuple[str, ...]
    log: Path
    process: subprocess.Popen = field(init=False)

    def __post_init__(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "invoke", "build", *self.args],
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float = BUILD_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Its end, as `tests.helpers.invoke` reports one (stdout holds both streams)."""
        try:
            returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        output = self.log.read_text(errors="replace")
        return subprocess.CompletedProcess(self.process.args, returncode, output, "")

    def stop(self) -> None:
        """Ctrl-C as a user would (invoke ends the build), then kill if that hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class GpuBuild:
    """The background GPU build of this session, if one was started, and whether the GPU
    image was there before it (a user's own image stays after the tests)."""

    build: BackgroundBuild | None = None
    users_own: bool = False

    def start(self, engine, session, log: Path) -> None:
        if self.build is None and wants_gpu(session):
            self.users_own = bool(engine.images.list(name=settings.image_tag(gpu=True)))
            self.build = BackgroundBuild(("--gpu",), log)


def wants_gpu(session) -> bool:
    """Whether the session's selected tests include a GPU test (the `gpu` marker)."""
    return any(item.get_closest_marker("gpu") for item in session.items)

"""What a measured step gets (a plan and a context) and what it is (a name, the figures it
reports, and the function that measures them)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
from bench import runs
from bench.figure import Figure


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How much to repeat; quick mode is what CI runs."""

    mode: str
    rebuilds: int
    launch_reps: int
    training_pairs: int  # container vs native
    training_epochs: int
    pipeline_rounds: int
    pipeline_epochs: int
    checkpoints: int
    fit_pairs: int  # every paired `bench.workloads.fit` comparison
    fit_epochs: int
    multiworker_pairs: int
    multiworker_epochs: int
    build_gpu_if_missing: bool


FULL = Plan(
    mode="full",
    rebuilds=2,
    launch_reps=3,
    training_pairs=5,
    training_epochs=40,
    pipeline_rounds=3,
    pipeline_epochs=8,
    checkpoints=10,
    fit_pairs=5,
    fit_epochs=10,
    multiworker_pairs=3,
    multiworker_epochs=6,
    build_gpu_if_missing=True,
)
QUICK = Plan(
    mode="quick",
    rebuilds=1,
    launch_reps=1,
    training_pairs=1,
    training_epochs=8,
    pipeline_rounds=1,
    pipeline_epochs=4,
    checkpoints=3,
    fit_pairs=1,
    fit_epochs=5,
    multiworker_pairs=1,
    multiworker_epochs=3,
    build_gpu_if_missing=False,
)


@dataclass(kw_only=True)
class Context:
    """What every step may use: the plan, a scratch folder, the engine, a way to talk."""

    plan: Plan
    work: Path
    client: docker.DockerClient
    clock: runs.ContainerClock
    echo: Callable[[str], None]
    notes: list[str] = field(default_factory=list)
    _data_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        """The default digits, written on first use (steps that weigh images need none)."""
        if self._data_dir is None:
            runs.write_data(self.work / "data")
            self._data_dir = self.work / "data"
        return self._data_dir

    def outputs(self, name: str) -> Path:
        """A fresh output folder that containers running as the caller can write."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.work))
        path.chmod(0o755)
        return path


@dataclass(frozen=True, kw_only=True)
class Step:
    """One measured step: `measure` returns exactly the figures named in `figures`."""

    name: str
    figures: tuple[str, ...]
    measure: Callable[[Context], list[Figure]]

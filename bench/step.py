"""What a measured step gets (a plan and a context) and what it is (a name, the figures it
reports, and the function that measures them)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import docker
from bench import runs
from bench.figure import Figure


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Quick (what CI runs: one repetition, a few minutes) or full; each step says how
    much it repeats in either mode with `choose`."""

    mode: Literal["quick", "full"]
    build_gpu_if_missing: bool

    def choose(self, *, quick: int, full: int) -> int:
        return quick if self.mode == "quick" else full


FULL = Plan(mode="full", build_gpu_if_missing=True)
QUICK = Plan(mode="quick", build_gpu_if_missing=False)


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

"""Command-line values that must be numbers or sizes: parsed once; a wrong one is a usage error."""

from __future__ import annotations

import math

import docker.errors
import docker.utils

from app.launch.containers import DEFAULT_SHM_SIZE, Limits
from app.launch.errors import UsageError

MIN_MEMORY_BYTES = 6 * 2**20  # the engine refuses a smaller memory limit


def parse_count(value: object, option: str) -> int:
    """A whole number of 1 or more (`--workers 2`)."""
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{option} {value}: give a whole number of 1 or more, e.g. {option} 2")
    return int(text)


def parse_cpus(value: object) -> float:
    """A positive number of CPUs, fractions allowed (`--cpus 1.5`)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise UsageError(f"--cpus {value}: give a number of CPUs above 0, e.g. --cpus 1.5")
    return number


def parse_size(value: object, option: str, minimum: int = 1) -> str:
    """A byte size as Docker reads it (`4g`, `512m`), returned as given."""
    text = str(value).strip()
    try:
        parsed = docker.utils.parse_bytes(text) if text else 0
    except docker.errors.DockerException:
        parsed = 0
    if parsed < minimum:
        least = f"of at least {minimum // 2**20}m" if minimum >= 2**20 else "above 0"
        raise UsageError(f"{option} {value}: give a size {least} with a unit b, k, m or g, e.g. {option} 4g")
    return text


def parse_port(value: object) -> int:
    """A TCP port number (`--port 8890`)."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"--port {value}: give a TCP port number from 1 to 65535, e.g. --port 8890")
    return int(text)


def limits(cpus: object = None, memory: object = None, shm_size: object = None) -> Limits:
    """The container's resource limits from `--cpus`, `--memory`, `--shm-size` (None: the default)."""
    return Limits(
        cpus=None if cpus is None else parse_cpus(cpus),
        memory=None if memory is None else parse_size(memory, "--memory", minimum=MIN_MEMORY_BYTES),
        shm_size=DEFAULT_SHM_SIZE if shm_size is None else parse_size(shm_size, "--shm-size"),
    )


def after_double_dash(argv: list[str]) -> list[str]:
    """The arguments after a standalone `--`, exactly as the shell split them.

    (invoke takes no variable number of positional arguments, and joins what follows `--`
    into one string with spaces, which would split a path that holds a space.)
    """
    return argv[argv.index("--") + 1 :] if "--" in argv else []

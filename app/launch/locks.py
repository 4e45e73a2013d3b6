"""Lock files, every pin hashed: requirements/<variant>.in -> <variant>.lock for the images,
requirements/host.in -> requirements.txt for the host (`python -m pip install -r requirements.txt`)."""

from __future__ import annotations

import re
import shutil
import subprocess

from app.launch.errors import TrainboxError
from app.settings import REPO_ROOT, VARIANTS

# The images' interpreter and C library (Debian bookworm: Python 3.11, glibc 2.36).
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_36"
REQUIREMENTS = REPO_ROOT / "requirements"
HOST_LOCK = REPO_ROOT / "requirements.txt"
# A pin with extras and its hashes: `urllib3[socks]==2.7.0 \` and the `--hash` lines below it.
PIN_WITH_EXTRAS = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)\[[^\]]+\](?P<rest>==.*\n(?:    --hash=.*\n)*)", re.MULTILINE
)


def lock_command(variant: str) -> list[str]:
    return [
        "uv", "pip", "compile", f"{variant}.in", "--generate-hashes", "--quiet",
        "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM,
        "--output-file", f"{variant}.lock",
    ]  # fmt: skip


def host_lock_command() -> list[str]:
    """Any host with Python >= 3.11 (Linux, macOS, Windows): a universal resolution."""
    return [
        "uv", "pip", "compile", "host.in", "--generate-hashes", "--quiet", "--universal",
        "--no-strip-extras", "--python-version", PYTHON_VERSION, "--output-file", "../requirements.txt",
    ]  # fmt: skip


def pin_extras_plainly(text: str) -> str:
    """Add `name==version` (same hashes) before each `name[extra]==version` pin.

    pip before 23.3 in hash-checking mode sees `urllib3` (asked for by docker) and
    `urllib3[socks]` (by selenium) as two requirements and wants both pinned
    (pypa/pip#9644); newer pip accepts the pair as well.
    """
    return PIN_WITH_EXTRAS.sub(lambda pin: pin["name"] + pin["rest"] + pin[0], text)


def _compile(command: list[str], what: str) -> None:
    result = subprocess.run(command, cwd=REQUIREMENTS, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TrainboxError(f"locking {what} failed: {last}")


def lock_all(echo=print) -> None:
    if shutil.which("uv") is None:
        raise TrainboxError("uv is not installed: python -m pip install -r requirements.txt")
    for variant in VARIANTS:
        echo(f"locking requirements/{variant}.in -> requirements/{variant}.lock")
        _compile(lock_command(variant), variant)
    echo("locking requirements/host.in -> requirements.txt")
    _compile(host_lock_command(), "the host requirements")
    HOST_LOCK.write_text(pin_extras_plainly(HOST_LOCK.read_text(encoding="utf-8")), encoding="utf-8")

"""Lock files: requirements/<variant>.in -> <variant>.lock, every wheel pinned by hash."""

from __future__ import annotations

import shutil
import subprocess

from app.launch.errors import TrainboxError
from app.settings import REPO_ROOT, VARIANTS

# The images' interpreter and C library (Debian bookworm: Python 3.11, glibc 2.36).
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_36"


def lock_command(variant: str) -> list[str]:
    return [
        "uv",
        "pip",
        "compile",
        f"{variant}.in",
        "--generate-hashes",
        "--quiet",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORM,
        "--output-file",
        f"{variant}.lock",
    ]


def lock_all(echo=print) -> None:
    if shutil.which("uv") is None:
        raise TrainboxError("uv is not installed: python -m pip install -r requirements.txt")
    for variant in VARIANTS:
        echo(f"locking requirements/{variant}.in -> requirements/{variant}.lock")
        result = subprocess.run(
            lock_command(variant), cwd=REPO_ROOT / "requirements", capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise TrainboxError(f"locking {variant} failed: {last}")

"""Facts about the source tree that images and runs record: commit, dirtiness, hashes."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# What an image is made of (the Dockerfile, its helper, the locks and the code it copies);
# their hash, stored as a label, tells whether an image is older than the work tree.
CODE_PATHS = ("Dockerfile", "docker", "requirements", "pyproject.toml", "app", "configs", "tests", "notebooks")


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool


def git_state(root: Path = REPO_ROOT) -> GitState:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return GitState(commit="unknown", dirty=True)
    return GitState(commit=commit, dirty=dirty)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_sha256(root: Path = REPO_ROOT) -> str:
    """Digest of every file the image's code layers are made of (paths and contents)."""
    digest = hashlib.sha256()
    for name in CODE_PATHS:
        top = root / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(root).as_posix()
            if "__pycache__" in relative or ".ipynb_checkpoints" in relative:
                continue
            digest.update(relative.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()

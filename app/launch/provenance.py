"""Facts about the source tree that images and runs record: commit, dirtiness, hashes."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import exclude_paths

from app.settings import REPO_ROOT

DOCKERFILE = "Dockerfile"
DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool
    committed: str = ""  # the commit's time (ISO 8601), "" outside a git checkout


def git_state(root: Path = REPO_ROOT) -> GitState:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        committed = git("log", "-1", "--format=%cI")
    except (OSError, subprocess.CalledProcessError):
        return GitState(commit="unknown", dirty=True)
    return GitState(commit=commit, dirty=dirty, committed=committed)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dockerignore_patterns(root: Path = REPO_ROOT) -> list[str]:
    lines = (root / DOCKERIGNORE).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def context_paths(root: Path = REPO_ROOT) -> list[str]:
    """What the build context holds: the paths (files and folders) .dockerignore lets through,
    relative to root, sorted, the Dockerfile always among them (as `docker build` sends it)."""
    return sorted(exclude_paths(str(root), dockerignore_patterns(root), dockerfile=DOCKERFILE))


def _entry_digest(path: Path) -> bytes | None:
    if path.is_symlink():
        return hashlib.sha256(os.readlink(path).encode()).digest()
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).digest()
    return None  # a folder: its files speak for it


def code_sha256(root: Path = REPO_ROOT) -> str:
    """Digest of every file the build context sends (paths and contents): what an image is made of.

    Stored as a label, it tells whether an image is older than the work tree. Files that
    .dockerignore keeps out (test output, caches, data) never change it.
    """
    digest = hashlib.sha256()
    for relative in context_paths(root):
        entry = _entry_digest(root / relative)
        if entry is not None:
            digest.update(relative.encode() + b"\0" + entry)
    return digest.hexdigest()


def code_summary(root: Path = REPO_ROOT) -> str:
    """What code_sha256 covers, in words: the top-level files and folders of the build context."""
    tops = {}
    for relative in context_paths(root):
        top, _, rest = relative.partition("/")
        tops[top] = tops.get(top, False) or bool(rest) or (root / top).is_dir()
    return ", ".join(f"{name}/" if is_dir else name for name, is_dir in sorted(tops.items()))

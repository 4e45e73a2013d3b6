"""A run's image again, on an engine that no longer has it (`invoke reproduce`).

Either rebuilt from the run's recorded commit, in a throwaway git worktree (the user's work
tree stays as it is), and accepted only when its lock and code hashes are the run's; or
loaded from an exported tarball (`invoke export`), accepted only when its id is the run's.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app import settings
from app.launch import images
from app.launch.engine import client
from app.launch.errors import UsageError
from app.settings import REPO_ROOT

ARCHIVE_HINT = "load the exported image instead with --image-archive FILE (invoke export writes it)"
# The hashes a rebuilt image must share with the run: (name, image label, path in the manifest).
HASHES = (
    ("lock_sha256", settings.LOCK_LABEL, ("environment", "lock_sha256")),
    ("code_sha256", settings.CODE_LABEL, ("image", "code_sha256")),
)


def recorded(record: dict, path: tuple[str, ...]) -> str | None:
    value = record
    for key in path:
        value = (value or {}).get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value != "unknown" else None


def why_not_rebuildable(record: dict) -> str | None:
    """Why the run's image cannot be rebuilt from its commit (a phrase), or None when it can."""
    git = record.get("git") or {}
    commit = recorded(record, ("git", "commit"))
    if commit is None:
        return "recorded no git commit"
    if git.get("dirty") is not False:
        return f"was made from uncommitted changes on {commit[:12]}, which no commit holds"
    missing = [name for name, _, path in HASHES if recorded(record, path) is None]
    if missing:
        return f"recorded no {' or '.join(missing)} to check a rebuilt image against"
    return None


def mismatches(labels: dict, record: dict) -> list[str]:
    """The hashes where an image's labels differ from the run's, as 'name recorded -> image'."""
    return [
        f"{name} {(recorded(record, path) or 'none')[:12]} -> {(labels.get(label) or 'none')[:12]}"
        for name, label, path in HASHES
        if labels.get(label) != recorded(record, path)
    ]


def rebuild_tag(commit: str) -> str:
    return f"{settings.IMAGE_REPOSITORY}:reproduce-{commit[:12]}"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def has_commit(commit: str, root: Path = REPO_ROOT) -> bool:
    return _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


@contextlib.contextmanager
def worktree(commit: str, root: Path = REPO_ROOT) -> Iterator[Path]:
    """The commit checked out in a temporary worktree, removed afterwards (also on Ctrl-C)."""
    parent = Path(tempfile.mkdtemp(prefix="trainbox-reproduce-"))
    tree = parent / "tree"
    try:
        added = _git(root, "worktree", "add", "--detach", str(tree), commit)
        if added.returncode != 0:
            detail = (added.stderr.strip().splitlines() or ["git worktree add failed"])[-1]
            raise UsageError(f"cannot check out commit {commit[:12]}: {detail}")
        yield tree
    finally:
        _git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)
        _git(root, "worktree", "prune")


def matching_image(record: dict):
    """An image on the engine with the run's lock and code hashes (rebuilt before), or None."""
    if any(recorded(record, path) is None for _, _, path in HASHES):
        return None
    labels = [f"{label}={recorded(record, path)}" for _, label, path in HASHES]
    found = client().images.list(filters={"label": labels})
    return max(found, key=lambda image: image.attrs.get("Created", ""), default=None)


def rebuild(record: dict, run_id: str, echo=print, hint: str = ARCHIVE_HINT):
    """The run's image rebuilt from its commit, its hashes checked; a usage error otherwise,
    ending in `hint` (what else the user can do)."""
    image_id = record["image"]["id"]
    gone = f"image {image_id[:19]} of run {run_id} is not on this engine"
    reason = why_not_rebuildable(record)
    if reason is not None:
        raise UsageError(f"{gone} and cannot be rebuilt: the run {reason}; {hint}")
    commit = record["git"]["commit"]
    if not has_commit(commit):
        raise UsageError(f"{gone}, and its commit {commit[:12]} is not in this repository; {hint}")
    found = matching_image(record)
    if found is not None:
        echo(f"{gone}; using {found.id[:19]}, built before from the same lock and code")
        return found
    tag = rebuild_tag(commit)
    echo(f"{gone}: rebuilding it from commit {commit[:12]} as {tag}")
    variant = recorded(record, ("environment", "variant")) or "cpu"
    with worktree(commit) as tree:
        images.build_image(images.BuildRequest(variant=variant, tag=tag, context_root=tree), echo=echo)
    image = images.require(tag)
    differing = mismatches(image.labels or {}, record)
    if differing:
        raise UsageError(
            f"the image rebuilt from commit {commit[:12]} is not the run's ({', '.join(differing)}): "
            f"nothing was run; {hint}"
        )
    same = "the same id" if image.id == image_id else f"id {image.id[:19]} (builds are not byte-reproducible)"
    echo(f"rebuilt {tag}: lock and code hashes match run {run_id}'s; {same}")
    return image


def load_archive(path: str, record: dict, run_id: str, echo=print):
    """The run's image loaded from a `docker save` tarball whose image id must be the run's."""
    archive = Path(path).expanduser()
    if not archive.is_file():
        raise UsageError(f"image archive not found: {archive}")
    with open(archive, "rb") as handle:
        loaded = client().images.load(handle)
    wanted = record["image"]["id"]
    if wanted not in {image.id for image in loaded}:
        held = ", ".join(image.id[:19] for image in loaded) or "no image"
        raise UsageError(f"{archive} holds {held}, not image {wanted[:19]} of run {run_id}")
    echo(f"loaded image {wanted[:19]} of run {run_id} from {archive}")
    return images.require(wanted)

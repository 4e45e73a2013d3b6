"""`invoke build` after a code-only change, in a throwaway copy of the repository under
its own tag (the user's image and tree are never touched)."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import docker.errors

from app import settings
from bench import runs
from bench.figure import Baseline, Figure, Goal
from bench.step import Context, Step

# Not part of a build context, and large or changing while the suite runs.
NOT_COPIED = (
    "data", "outputs", "export", "__pycache__", ".pytest_cache", "artifacts", "test-artifacts", "results.json"
)  # fmt: skip


def rebuild_tag() -> str:
    return f"{settings.IMAGE_REPOSITORY}:bench-rebuild"


def copy_work_tree(destination: Path) -> Path:
    """The work tree with its git state (the build records it), without data or outputs."""
    shutil.copytree(
        settings.REPO_ROOT, destination, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True
    )
    return destination


def edit_code(copy: Path, attempt: int) -> None:
    marker = copy / "app" / "train" / "__init__.py"
    marker.write_text(marker.read_text() + f"# bench code change {attempt} {time.time()}\n")


def remove_own_images(client, made: list[str]) -> None:
    """The step's tag, then the images it made that nothing else names. An unchanged tree
    builds the very image the user has (same id as trainbox:cpu): removing that by id would
    delete the user's image, so an image that still has a tag is left alone."""
    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(rebuild_tag())
    for image_id in reversed(made):
        with contextlib.suppress(docker.errors.APIError):
            if not client.images.get(image_id).tags:
                client.images.remove(image_id, force=False)


def measure(ctx: Context) -> list[Figure]:
    rebuilds = ctx.plan.choose(quick=1, full=2)
    ctx.echo(f"code-only rebuild in a copy of the repository, {rebuilds} time(s) ...")
    copy = copy_work_tree(ctx.work / "repo")
    tag_args = ["--tag", rebuild_tag()]
    made = []
    try:
        unchanged = runs.invoke_build(tag_args, cwd=copy)  # warm: every layer comes from the cache
        made.append(ctx.client.images.get(rebuild_tag()).id)
        samples = []
        for attempt in range(rebuilds):
            edit_code(copy, attempt)
            samples.append(runs.invoke_build(tag_args, cwd=copy))
            made.append(ctx.client.images.get(rebuild_tag()).id)
    finally:
        remove_own_images(ctx.client, made)
        shutil.rmtree(copy, ignore_errors=True)
    return [
        Figure(
            name="code_rebuild_s",
            unit="s",
            samples=tuple(samples),
            goal=Goal(at_most=10),
            baseline=Baseline(label="invoke build, nothing changed (s)", samples=(unchanged,)),
            definition="wall time of `invoke build` after editing one file under app/ (copy of the repo, "
            "own tag)",
        )
    ]


STEP = Step(name="rebuild", figures=("code_rebuild_s",), measure=measure)

"""`invoke clean`: remove exactly what the project made, and say what went.

What is the project's: containers, networks and volumes carrying the project label;
images named `<repository>:*` (trainbox:cpu, trainbox:gpu, ...) and, with `base`, the base
image; unnamed (dangling) images carrying the project label — every stage of the
Dockerfile carries it, so old builds and build stages are found by it. Nothing is
pruned engine-wide: another project's dangling images are not ours to delete.
"""

from __future__ import annotations

import docker.errors

from app import settings
from app.launch.engine import client, label_filter
from app.launch.engines import short_tag

IN_USE = 409  # the engine refuses to remove an image a container still uses


def _narrowed(filters: dict, extra_labels: dict[str, str] | None) -> dict:
    """Names alone select images; extra labels (a test's marker) narrow that to the marked ones."""
    return {**filters, **label_filter(**extra_labels)} if extra_labels else filters


def _remove(action) -> str | None:
    """Run a removal; None when done (or already done by someone else), else why it was kept."""
    try:
        action()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if error.status_code == IN_USE:
            return "in use by a container"
        if "already in progress" not in str(error):
            raise
    return None


def _remove_named(engine, reference: str, extra_labels, echo) -> list[str]:
    removed = []
    prefix = reference.split(":")[0] + ":"
    for image in engine.images.list(filters=_narrowed({"reference": reference}, extra_labels)):
        for tag in [tag for tag in image.tags if short_tag(tag).startswith(prefix)]:
            kept = _remove(lambda tag=tag: engine.images.remove(tag))
            if kept:
                echo(f"kept image {tag}: {kept}")
            else:
                removed.append(f"image {tag}")
    return removed


def _remove_dangling(engine, extra_labels, echo) -> list[str]:
    """Unnamed images of the project's earlier builds, found by the project label."""
    found = engine.images.list(filters={"dangling": True, **label_filter(**(extra_labels or {}))})
    gone = [image for image in found if not _remove(lambda image=image: engine.images.remove(image.id))]
    if len(gone) < len(found):
        echo(f"kept {len(found) - len(gone)} unnamed image(s) in use by a container")
    return [f"unnamed image {image.short_id.removeprefix('sha256:')} (an earlier build)" for image in gone]


def clean(
    images: bool = False, base: bool = False, extra_labels: dict[str, str] | None = None, echo=print
) -> list[str]:
    """Remove the project's containers (running ones too), networks and volumes; with
    `images` also its images except the base, with `base` the base image too.

    The base image is kept unless asked for: making it again needs root and the Debian archive.
    """
    selector = label_filter(**(extra_labels or {}))
    engine = client()
    removed = []
    for container in engine.containers.list(all=True, filters=selector):
        _remove(lambda container=container: container.remove(force=True))
        removed.append(f"container {container.name}")
    for network in engine.networks.list(filters=selector):
        _remove(network.remove)
        removed.append(f"network {network.name}")
    for volume in engine.volumes.list(filters=selector):
        _remove(lambda volume=volume: volume.remove(force=True))
        removed.append(f"volume {volume.name}")
    if images or base:
        removed += _remove_named(engine, f"{settings.IMAGE_REPOSITORY}:*", extra_labels, echo)
    if base:
        removed += _remove_named(engine, settings.BASE_IMAGE, extra_labels, echo)
    if images or base:
        removed += _remove_dangling(engine, extra_labels, echo)
    for item in removed:
        echo(f"removed {item}")
    if not removed:
        echo("nothing to remove")
    return removed

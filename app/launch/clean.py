"""`invoke clean`: remove exactly what the project made, found by its label, and say what went."""

from __future__ import annotations

import docker.errors

from app.launch.engine import client
from app.launch.errors import docker_errors
from app.launch.images import PROJECT_LABEL

PROJECT_IMAGE_REPOSITORY = "trainbox"


def project_filter(extra_labels: dict[str, str] | None = None) -> dict:
    """The label filter for the project's objects (extra labels narrow it, e.g. for tests)."""
    labels = {PROJECT_LABEL: "trainbox", **(extra_labels or {})}
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def _gone(action) -> bool:
    """Run a removal; something already removed by someone else counts as gone."""
    try:
        action()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if "already in progress" not in str(error):
            raise
    return True


def clean(images: bool = False, extra_labels: dict[str, str] | None = None, echo=print) -> list[str]:
    """Remove the project's containers (running ones too), then networks and volumes.

    With images: also the trainbox:* images and the engine's dangling images (old builds
    and build stages are untagged, and not all of them carry the project label). The
    base image is kept: making it again needs root and the Debian archive.
    """
    selector = project_filter(extra_labels)
    removed: list[str] = []
    with docker_errors():
        engine = client()
        for container in engine.containers.list(all=True, filters=selector):
            _gone(lambda c=container: c.remove(force=True))
            removed.append(f"container {container.name}")
        for network in engine.networks.list(filters=selector):
            _gone(network.remove)
            removed.append(f"network {network.name}")
        for volume in engine.volumes.list(filters=selector):
            _gone(lambda v=volume: v.remove(force=True))
            removed.append(f"volume {volume.name}")
        if images:
            removed += _remove_images(engine, selector, extra_labels)
    for item in removed:
        echo(f"removed {item}")
    if not removed:
        echo("nothing to remove")
    return removed


def _remove_images(engine, selector: dict, extra_labels: dict[str, str] | None) -> list[str]:
    removed = []
    filters = {"reference": f"{PROJECT_IMAGE_REPOSITORY}:*"}
    if extra_labels:
        filters["label"] = selector["label"]
    for image in engine.images.list(filters=filters):
        for tag in image.tags:
            if tag.startswith(f"{PROJECT_IMAGE_REPOSITORY}:"):
                _gone(lambda t=tag: engine.images.remove(t, noprune=False))
                removed.append(f"image {tag}")
    prune_filters = {"dangling": True, **({"label": selector["label"]} if extra_labels else {})}
    pruned = engine.images.prune(filters=prune_filters)
    count = len(pruned.get("ImagesDeleted") or [])
    if count:
        reclaimed = (pruned.get("SpaceReclaimed") or 0) / 2**30
        removed.append(f"{count} dangling image layer(s), {reclaimed:.1f} GiB reclaimed")
    return removed

"""`invoke clean --images` touches only the project's images, on the real engine.

Other projects share this engine, so every call here is narrowed to this test's own marker
label; what is proven is the selection: unnamed images carrying the project label go, an
unnamed image without it stays, and with nothing matching nothing at all is removed.
"""

from __future__ import annotations

import io
import uuid

import docker.errors
import pytest

from app import settings
from app.launch.clean import clean

pytestmark = pytest.mark.docker


def build(engine, labels: dict[str, str], tag: str) -> str:
    """A tiny image with these labels; its id. FROM scratch, not the base image: the base
    carries the project label, and an image inherits its parent's labels."""
    label_line = " ".join(f"{key}={value}" for key, value in labels.items())
    dockerfile = f"FROM scratch\nLABEL {label_line}\n"
    image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return image.id


def unnamed(engine, labels: dict[str, str]) -> str:
    """An image left without a name, as a replaced build leaves one: built, then its tag
    given to a newer build (which is removed)."""
    tag = f"trainbox-cleanscope-{uuid.uuid4().hex[:8]}:x"
    image_id = build(engine, {**labels, "trainbox.test.build": "1"}, tag)
    build(engine, {**labels, "trainbox.test.build": "2"}, tag)
    engine.images.remove(tag)
    assert engine.images.get(image_id).tags == []
    return image_id


def exists(engine, image_id: str) -> bool:
    try:
        engine.images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_unnamed_images_go_only_when_they_carry_the_project_label(engine, cpu_image):
    marker = {"trainbox.test": uuid.uuid4().hex}
    ours = unnamed(engine, {**settings.project_labels(), **marker})
    stranger = unnamed(engine, {"other.project": "theirs", **marker})
    try:
        said = []
        removed = clean(images=True, extra_labels=marker, echo=said.append)
        assert removed == [f"unnamed image {ours[7:19]} (an earlier build)"]
        assert not exists(engine, ours)
        assert exists(engine, stranger)
    finally:
        engine.images.remove(stranger, force=True)


def test_with_nothing_matching_the_ci_start_step_succeeds_and_removes_nothing(engine, cpu_image):
    before = {image.id for image in engine.images.list(all=True)}
    said = []
    nothing = {"trainbox.test": uuid.uuid4().hex}
    assert clean(images=True, base=True, extra_labels=nothing, echo=said.append) == []
    assert said == ["nothing to remove"]
    after = {image.id for image in engine.images.list(all=True)}
    assert before <= after  # others may have built meanwhile; nothing of before is gone


def test_every_build_step_above_the_base_carries_the_project_label(engine, cpu_image):
    """So the images a build leaves unnamed (its builder stage, a replaced build) are found by it."""
    base_id = engine.images.get(settings.BASE_IMAGE).id
    image_id, steps = cpu_image.id, 0
    while image_id and image_id != base_id:
        attrs = engine.api.inspect_image(image_id)
        labels = attrs["Config"].get("Labels") or {}
        assert labels.get(settings.PROJECT_LABEL) == settings.PROJECT_NAME, attrs["ContainerConfig"]["Cmd"]
        image_id, steps = attrs.get("Parent"), steps + 1
    assert image_id == base_id and steps > 10


def test_images_keeps_the_base_and_base_removes_it(engine, monkeypatch):
    """`invoke clean --images` keeps the base image (making it again needs root and Debian's
    archive); `--base` removes it. A stand-in base under the base's own repository, with a
    marker, so the real base and other sessions' images are out of reach."""
    marker = {"trainbox.test": uuid.uuid4().hex}
    stand_in = f"{settings.BASE_IMAGE.split(':')[0]}:cleanscope-{marker['trainbox.test'][:8]}"
    base_id = build(engine, {**settings.project_labels(), **marker}, stand_in)
    monkeypatch.setattr(settings, "BASE_IMAGE", stand_in)
    try:
        assert clean(images=True, extra_labels=marker, echo=lambda _: None) == []
        assert exists(engine, base_id)
        removed = clean(images=True, base=True, extra_labels=marker, echo=lambda _: None)
        assert removed == [f"image {stand_in}"]
        assert not exists(engine, base_id)
    finally:
        if exists(engine, base_id):
            engine.images.remove(base_id, force=True)

"""What `invoke clean` asks the engine for: only the project's objects, never an engine-wide prune.

The engine here records the calls (the real engine is in tests/engine/test_clean_scope.py,
narrowed to a test's own marker, since other projects share it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app import settings
from app.launch import clean

PROJECT = f"{settings.PROJECT_LABEL}={settings.PROJECT_NAME}"


class RecordingImages:
    def __init__(self, calls):
        self.calls = calls

    def list(self, filters=None, **kwargs):
        self.calls.append(("images.list", filters))
        if filters.get("dangling"):
            return [SimpleNamespace(id="sha256:" + "d" * 64, short_id="sha256:dddddddddd", tags=[])]
        return [SimpleNamespace(id="sha256:" + "c" * 64, tags=[filters["reference"].replace("*", "cpu")])]

    def remove(self, image, **kwargs):
        self.calls.append(("images.remove", image))

    def prune(self, filters=None):
        self.calls.append(("images.prune", filters))
        return {}


class RecordingEngine:
    def __init__(self):
        self.calls = []
        self.images = RecordingImages(self.calls)
        self.containers = self.networks = self.volumes = self

    def list(self, filters=None, **kwargs):
        self.calls.append(("list", filters))
        return []


@pytest.fixture
def engine(monkeypatch):
    recording = RecordingEngine()
    monkeypatch.setattr(clean, "client", lambda: recording)
    return recording


def test_images_are_selected_by_name_or_by_the_project_label_and_never_pruned(engine):
    removed = clean.clean(images=True, base=True, echo=lambda line: None)
    assert not [call for call in engine.calls if call[0] == "images.prune"]
    lists = [filters for name, filters in engine.calls if name in ("list", "images.list")]
    for filters in lists:
        assert PROJECT in filters.get("label", []) or filters.get("reference"), filters
    dangling = [filters for filters in lists if filters.get("dangling")]
    assert dangling == [{"dangling": True, "label": [PROJECT]}]
    references = [filters["reference"] for filters in lists if "reference" in filters]
    assert references == [f"{settings.IMAGE_REPOSITORY}:*", settings.BASE_IMAGE]
    assert f"image {settings.IMAGE_REPOSITORY}:cpu" in removed


def test_the_base_image_is_kept_unless_asked_for(engine):
    clean.clean(images=True, echo=lambda line: None)
    references = [filters["reference"] for name, filters in engine.calls if "reference" in (filters or {})]
    assert references == [f"{settings.IMAGE_REPOSITORY}:*"]


def test_a_marker_narrows_every_selection(engine):
    marker = {"trainbox.test": "abc"}
    clean.clean(images=True, base=True, extra_labels=marker, echo=lambda line: None)
    for name, filters in engine.calls:
        if "list" in name:
            assert {PROJECT, "trainbox.test=abc"} <= set(filters["label"]), filters


def test_without_images_no_image_is_touched(engine):
    said = []
    assert clean.clean(echo=said.append) == []
    assert not [call for call in engine.calls if call[0].startswith("images.")]
    assert said == ["nothing to remove"]

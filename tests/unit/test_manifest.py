"""Run ids and the manifest schema: pure logic, no engine, no TensorFlow."""

from __future__ import annotations

import json

import pytest

from app import manifest
from app.manifest import RunRecord, Status

# A manifest as a completed run wrote it before the schema existed, plus a key of a newer version.
COMPLETED = {
    "run_id": "20261125-180512-3fa9c2",
    "status": "completed",
    "created_at": "2026-11-25T17:05:12Z",
    "config": {"seed": 42, "training": {"epochs": 2}},
    "seed": 42,
    "determinism": {"enabled": True, "op_determinism": True},
    "data": {"data_dir": "/data", "fingerprint": "ab" * 32, "class_names": ["cat", "dog"]},
    "epochs_completed": 2,
    "metrics": {"final_loss": 0.5, "test_accuracy": 0.75, "final_val_loss": None},
    "cluster": {"workers": 1, "strategy": None},
    "image": {"id": "sha256:0123", "tag": "trainbox:cpu"},
    "git": {"commit": "unknown", "dirty": None},
    "environment": {
        "python": "3.11.2",
        "tensorflow": "2.21.0",
        "packages_sha256": "cd" * 32,
        "lock_sha256": None,
    },
    "started_at": "2026-11-25T17:05:13Z",
    "updated_at": "2026-11-25T17:06:00Z",
    "weights_sha256": "ef" * 32,
    "finished_at": "2026-11-25T17:06:00Z",
    "sweep": {"id": "lr", "trial": 3},
}


@pytest.mark.parametrize("run_id", ["20261125-180512-3fa9c2", "reference", "a", "run_1.v2"])
def test_safe_run_ids(run_id):
    assert manifest.is_valid_run_id(run_id)


@pytest.mark.parametrize(
    "run_id",
    [
        "run\n",
        "run\r\n",
        "\nrun",
        "",
        ".hidden",
        "-flag",
        "a/b",
        "a..b",
        "..",
        "é",
        "a" * 129,
        "a b",
    ],
)
def test_unsafe_run_ids(run_id):
    assert not manifest.is_valid_run_id(run_id)


def test_new_run_ids_are_valid_and_distinct():
    ids = {manifest.new_run_id(now=0) for _ in range(20)}
    assert len(ids) == 20 and all(manifest.is_valid_run_id(run_id) for run_id in ids)


def test_a_record_read_and_written_back_is_the_same_json(tmp_path):
    (tmp_path / manifest.MANIFEST_NAME).write_text(json.dumps(COMPLETED))
    record = manifest.read_record(tmp_path)
    assert record.status is Status.COMPLETED and record.workers == 1
    assert record.data.fingerprint == "ab" * 32 and record.git.dirty is None
    manifest.write_record(tmp_path, record)
    written = json.loads((tmp_path / manifest.MANIFEST_NAME).read_text())
    assert written.pop("updated_at")  # stamped anew by every write
    assert written == {key: value for key, value in COMPLETED.items() if key != "updated_at"}


def test_only_the_keys_a_run_set_are_written():
    record = RunRecord(run_id="new", status=Status.RUNNING, created_at="2026-11-25T17:05:12Z")
    record.status = "failed"  # a plain string is checked and stored as the enum
    record.error = "the disk is full"
    assert record.status is Status.FAILED
    assert json.loads(json.dumps(record.to_json())) == {
        "run_id": "new",
        "status": "failed",
        "created_at": "2026-11-25T17:05:12Z",
        "error": "the disk is full",
    }


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"status": "running"}, "'run_id': Field required"),
        ({"run_id": "x", "status": "paused"}, "'status'"),
        ({"run_id": "x", "status": "running", "epochs_completed": "many"}, "'epochs_completed'"),
        ({"run_id": "x", "status": "running", "image": {"id": "sha256:0"}}, "'image.tag'"),
        (["not", "a", "mapping"], "'the top level'"),
    ],
)
def test_a_manifest_that_does_not_fit_is_one_line_naming_the_key(tmp_path, payload, fragment):
    (tmp_path / manifest.MANIFEST_NAME).write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="is not a run manifest") as caught:
        manifest.read_record(tmp_path)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_no_run_and_a_torn_manifest(tmp_path):
    assert manifest.read_record(tmp_path / "missing") is None
    (tmp_path / manifest.MANIFEST_NAME).write_text('{"run_id": "x", "sta')
    with pytest.raises(ValueError, match="cannot read"):
        manifest.read_record(tmp_path)


def test_the_dict_view_goes_through_the_schema(tmp_path):
    manifest.write_manifest(tmp_path, dict(COMPLETED, status="interrupted", interrupted_by="SIGTERM"))
    payload = manifest.read_manifest(tmp_path)
    assert payload["status"] == "interrupted" and payload["sweep"] == {"id": "lr", "trial": 3}
    with pytest.raises(ValueError, match="'status'"):
        manifest.write_manifest(tmp_path, dict(COMPLETED, status="done"))

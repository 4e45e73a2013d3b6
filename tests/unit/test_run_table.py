"""`invoke runs`: every folder of the output directory is a row, whatever state it is in."""

from __future__ import annotations

import json

import pytest

from app import manifest, run_lock
from app.config import Config, changed_from_defaults
from app.launch import run_table
from app.launch.errors import UsageError


def _config(**training) -> dict:
    config = Config().to_dict()
    config["training"].update(training)
    return config


def _write(output_dir, run_id, **fields):
    record = {
        "run_id": run_id,
        "status": "completed",
        "config": _config(epochs=2),
        "epochs_completed": 2,
        "metrics": {"test_accuracy": 0.8125},
        "image": {"id": "sha256:" + "ab" * 32, "tag": "trainbox:cpu"},
        "git": {"commit": "c0ffee" * 7, "dirty": True},
        "data": {"fingerprint": "f1"},
        "started_at": f"2026-12-07T10:0{run_id[-1]}:00Z",
        "finished_at": f"2026-12-07T10:0{run_id[-1]}:42Z",
        **fields,
    }
    (output_dir / run_id).mkdir()
    manifest.write_json_atomic(output_dir / run_id / manifest.MANIFEST_NAME, record)
    return record


def test_every_folder_is_a_row_newest_first_and_broken_ones_say_so(tmp_path):
    _write(tmp_path, "run-1", sweep={"id": "s1", "trial": 2})
    _write(tmp_path, "run-3", status="running")
    _write(tmp_path, "run-4", status="running")
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "manifest.json").write_text('{"run_id": "run-2", "sta')  # truncated
    (tmp_path / "photos").mkdir()  # someone else's folder
    (tmp_path / "sweeps").mkdir()  # the sweeps' own state, not a run
    (tmp_path / ".cache").mkdir()
    with run_lock.hold(tmp_path / "run-4"):
        rows = {row.run_id: row for row in run_table.list_runs(tmp_path)}
    assert [row.run_id for row in run_table.list_runs(tmp_path)][:3] == ["run-4", "run-3", "run-1"]
    assert set(rows) == {"run-1", "run-2", "run-3", "run-4", "photos"}
    assert rows["run-4"].status == "running"
    assert rows["run-3"].status == "abandoned"  # says running, nobody writes it
    assert rows["run-2"].status == "corrupt" and "manifest.json" in rows["run-2"].problem
    assert rows["photos"].status == "not a run"
    done = rows["run-1"]
    assert (done.status, done.epochs, done.test_accuracy, done.duration_s) == ("completed", "2/2", 0.8125, 42)
    assert (done.commit, done.image, done.sweep) == ("c0ffeec0ff+dirty", "ab" * 6, "s1#2")
    assert done.changed == {"training.epochs": 2}


def test_the_table_and_json_print_without_a_traceback(tmp_path, capsys):
    _write(tmp_path, "run-1")
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "manifest.json").write_text("[1, 2]")  # JSON, not a manifest
    run_table.show_runs(tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "STATUS", "STARTED"]
    assert "training.epochs=2" in lines[1] and "0.8125" in lines[1]
    assert lines[2].split()[:2] == ["run-2", "corrupt"]
    run_table.show_runs(tmp_path, as_json=True)
    assert [row["status"] for row in json.loads(capsys.readouterr().out)] == ["completed", "corrupt"]


def test_changed_keys_are_those_that_differ_from_the_defaults():
    config = _config(epochs=3)
    config["model"]["conv_filters"] = [8]
    config["future"] = {"key": 1}  # written by newer code: shown, not hidden
    assert changed_from_defaults(config) == {"model.conv_filters": [8], "training.epochs": 3, "future.key": 1}
    assert changed_from_defaults(Config().to_dict()) == {}


def test_compare_shows_both_runs_and_whether_they_are_comparable(tmp_path, capsys):
    _write(tmp_path, "run-1")
    _write(tmp_path, "run-2", config=_config(epochs=3), metrics={"test_accuracy": 0.9})
    run_table.compare_runs(tmp_path, ["run-1,run-2"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["run-1", "run-2", "DIFFERS"]
    assert any(line.split() == ["config", "training.epochs", "2", "3", "*"] for line in out)
    assert any(line.split()[:3] == ["image", "id", "sha256:abababababababababab…"] for line in out)
    assert out[-1] == "not comparable: uncommitted changes (code not comparable)"


def test_compare_refuses_what_it_cannot_compare_in_one_line(tmp_path):
    _write(tmp_path, "run-1")
    with pytest.raises(UsageError, match="takes two run ids, got 3"):
        run_table.two_runs(["a,b", "c"])
    with pytest.raises(UsageError, match="no such run"):
        run_table.compare_runs(tmp_path, ["run-1", "run-9"])


def test_runs_are_comparable_only_with_the_same_data_image_and_clean_code():
    from app.launch.comparison import comparability

    run = {"data": {"fingerprint": "f"}, "image": {"id": "i"}, "git": {"commit": "c", "dirty": False}}
    assert comparability(run, run) == []
    other = {**run, "data": {"fingerprint": "g"}, "image": {}}
    assert comparability(run, other) == ["different data", "image unknown"]

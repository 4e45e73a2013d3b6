"""The decoded-image cache: written once, reused, rebuilt when the data or the pixels change,
never trusted when damaged, resumed after a kill, and training on it stays bit-identical."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from image_helpers import REPO, app_command, app_env, read_manifest, run_app, train_args

from app.config import load_config
from app.train import cache
from app.train.data import load_dataset
from app.train.files import plan_dataset
from tests.helpers import cache_rows_written
from tests.photos import PHOTO_OVERRIDES, make_dataset, make_photos

pytestmark = pytest.mark.image

PIXELS = ["data.image_size=[12,12]", *PHOTO_OVERRIDES]
TINY_PHOTOS = [
    *PIXELS,
    "model.conv_filters=[4]",
    "model.dense_units=8",
    "training.batch_size=4",
    "training.epochs=4",
]


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("photos"), train_per_class=14, test_per_class=4)


def load(data_dir: Path, cache_dir: Path, *overrides: str):
    config = load_config(None, [*PIXELS, *overrides])
    return load_dataset(plan_dataset(data_dir, config.data, config.seed), config.data, cache_dir)


def reused(dataset) -> list[bool]:
    return [entry["reused"] for entry in dataset.cache["entries"]]


def entry_dirs(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_written_once_then_reused_with_the_same_pixels(photos_dir, tmp_path, capsys):
    first = load(photos_dir, tmp_path)
    assert reused(first) == [False, False]
    assert "cache: wrote photos/train" in capsys.readouterr().out
    second = load(photos_dir, tmp_path)
    assert reused(second) == [True, True]
    assert "cache: reusing photos/train" in capsys.readouterr().out
    assert np.array_equal(
        first.train.take(range(len(first.train)))[0], second.train.take(range(len(second.train)))[0]
    )
    assert (tmp_path / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_other_pixels_or_another_seed_need_no_second_copy(photos_dir, tmp_path):
    load(photos_dir, tmp_path)
    assert reused(load(photos_dir, tmp_path, "seed=7")) == [True, True]  # another validation split
    assert reused(load(photos_dir, tmp_path, "data.resize=pad")) == [False, False]
    assert len(entry_dirs(tmp_path)) == 4


def test_a_changed_file_is_decoded_again(photos_dir, tmp_path, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("changing")
    make_dataset(data_dir, train_per_class=6, test_per_class=2)
    cache_dir = tmp_path / "cache"
    before = load(data_dir, cache_dir)
    changed = sorted((data_dir / "photos" / "train" / "clouds").iterdir())[0]
    make_photos(data_dir / "scratch", 1, seed=99, classes=("apples",))
    changed.write_bytes(next((data_dir / "scratch" / "apples").iterdir()).read_bytes())
    after = load(data_dir, cache_dir)
    assert reused(after) == [False, True], "train changed, test did not"
    assert after.fingerprint != before.fingerprint


def damage_header(entry: Path) -> None:
    header = json.loads((entry / cache.HEADER).read_text())
    header["count"] += 1
    (entry / cache.HEADER).write_text(json.dumps(header))


def damage_rows(entry: Path) -> None:
    with open(entry / cache.IMAGES, "r+b") as handle:
        handle.seek(-100, os.SEEK_END)
        handle.write(b"\x7f" * 100)


def damage_size(entry: Path) -> None:
    with open(entry / cache.IMAGES, "r+b") as handle:
        handle.truncate(handle.seek(0, os.SEEK_END) - 1)


def damage_crcs(entry: Path) -> None:
    (entry / cache.CRC).write_bytes(b"")


@pytest.mark.parametrize("damage", [damage_header, damage_rows, damage_size, damage_crcs])
def test_a_damaged_entry_is_rebuilt_never_trusted(photos_dir, tmp_path, capsys, damage):
    good = load(photos_dir, tmp_path)
    images = good.train.take(range(len(good.train)))[0]
    (train_entry,) = [p for p in entry_dirs(tmp_path) if p.name.startswith("photos-train")]
    damage(train_entry)
    capsys.readouterr()
    again = load(photos_dir, tmp_path)
    assert "is damaged" in capsys.readouterr().out
    assert reused(again) == [False, True]
    assert np.array_equal(again.train.take(range(len(again.train)))[0], images)


def test_a_file_system_without_locks_still_gets_a_whole_entry(photos_dir, tmp_path, monkeypatch):
    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")  # some cluster mounts

    monkeypatch.setattr(cache.fcntl, "flock", no_locks)
    first = load(photos_dir, tmp_path)
    assert reused(first) == [False, False]
    assert not list(tmp_path.glob(".*partial*")), "private partial names, renamed into place"
    assert reused(load(photos_dir, tmp_path)) == [True, True]


def test_a_cache_path_that_cannot_be_written_is_one_clean_line(photos_dir, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache dir should be")
    result = run_app(
        *train_args(
            photos_dir, tmp_path / "out", "blocked", TINY_PHOTOS, "--cache-dir", str(blocked / "cache")
        )
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("trainbox: cache directory")
    ]
    assert not (tmp_path / "out" / "blocked").exists()


def test_unreadable_files_stop_the_run_or_are_skipped_and_recorded(photos_dir, tmp_path_factory, tmp_path):
    data_dir = tmp_path_factory.mktemp("unreadable")
    make_dataset(data_dir, train_per_class=6, test_per_class=2)
    notes = data_dir / "photos" / "train" / "apples" / "notes.jpg"
    notes.write_text("shopping list: apples, more apples\n")
    torn = data_dir / "photos" / "train" / "clouds" / "torn.jpg"
    torn.write_bytes((data_dir / "photos" / "train" / "clouds" / "clouds-0000.jpg").read_bytes()[:200])

    stopped = run_app(*train_args(data_dir, tmp_path, "stopped", TINY_PHOTOS))
    assert stopped.returncode == 2, stopped.stderr[-2000:]
    (line,) = stopped.stderr.strip().splitlines()
    assert line.startswith("trainbox: unreadable image: ") and str(notes) in line, line

    skipping = run_app(
        *train_args(data_dir, tmp_path, "skipping", [*TINY_PHOTOS, "data.skip_unreadable=true"])
    )
    assert skipping.returncode == 0, skipping.stderr[-2000:]
    record = read_manifest(tmp_path / "skipping")["data"]
    assert sorted(item["file"] for item in record["skipped"]) == [
        "photos/train/apples/notes.jpg",
        "photos/train/clouds/torn.jpg",
    ]
    assert all(item["reason"] for item in record["skipped"])
    assert sum(record["counts"][split] for split in ("train", "validation")) == 18
    assert "skipped unreadable: photos/train/apples/notes.jpg" in skipping.stdout


# --- a real run killed while it writes the cache --------------------------------------


def test_a_run_killed_while_writing_the_cache_resumes_it_into_the_same_entry(tmp_path_factory, tmp_path):
    data_dir = tmp_path_factory.mktemp("many")
    make_photos(data_dir / "photos" / "train", 700, sizes=(48, 96))
    make_photos(data_dir / "photos" / "test", 4, seed=1)
    overrides = [*TINY_PHOTOS, "data.image_size=[96,96]", "training.epochs=1", "training.batch_size=64"]
    cache_dir = tmp_path / "cache"
    args = train_args(data_dir, tmp_path / "out", "killed", overrides, "--cache-dir", str(cache_dir))
    with (tmp_path / "log.txt").open("w") as log:
        process = subprocess.Popen(app_command(*args), cwd=REPO, env=app_env(), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while cache_rows_written(cache_dir) == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    done = cache_rows_written(cache_dir)
    assert 0 < done < 2100, (tmp_path / "log.txt").read_text()[-2000:]
    assert not [p for p in entry_dirs(cache_dir) if p.name.startswith("photos-train")], "no entry yet"

    again = run_app(
        *train_args(data_dir, tmp_path / "out", "again", overrides, "--cache-dir", str(cache_dir))
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cache: resuming photos/train at image " in again.stdout
    assert not list(cache_dir.glob(".*.partial")), "the partial entry became the entry"

    fresh = load(data_dir, tmp_path / "fresh-cache", *overrides)  # decoded in one go, no training
    resumed = load(data_dir, cache_dir, *overrides)
    assert reused(resumed)[0], "the entry the resumed run finished"
    assert np.array_equal(resumed.train.images, fresh.train.images)


# --- determinism, streaming photos from the cache ----------------------------------------
# (Bitwise resume of the same streaming pipeline, killed at any moment: test_reproducible.py.)


def test_photos_train_bit_identically_whether_the_cache_is_written_or_reused(photos_dir, tmp_path):
    cache_dir = str(tmp_path / "cache")
    built = run_app(*train_args(photos_dir, tmp_path, "built", TINY_PHOTOS, "--cache-dir", cache_dir))
    assert built.returncode == 0, built.stderr[-2000:]
    reusing = run_app(*train_args(photos_dir, tmp_path, "reusing", TINY_PHOTOS, "--cache-dir", cache_dir))
    assert reusing.returncode == 0, reusing.stderr[-2000:]
    assert "cache: reusing photos/train" in reusing.stdout
    reference = read_manifest(tmp_path / "built")["weights_sha256"]
    assert read_manifest(tmp_path / "reusing")["weights_sha256"] == reference

"""Photos at scale through `invoke train`: more decoded data than the container's memory,
the cache on a directory of the user's choosing, and the failures that size brings
(memory while decoding, a full cache disk), each one line and resumable."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.helpers import REPO_ROOT, cache_rows_written, fill, invoke
from tests.photos import PHOTO_OVERRIDES, make_photos

pytestmark = pytest.mark.docker

MEMORY = "450m"  # TensorFlow and this model's batches need ~270 MB; the decoded photos are more
MEMORY_BYTES = 450 * 2**20
TINY_MODEL = ["model.conv_filters=[4]", "model.dense_units=8", "training.epochs=1"]


def sets(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def trainbox_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("trainbox: ")]


def train(data_dir: Path, output_dir: Path, *options: str, overrides: list[str], timeout: int = 600):
    return invoke(
        "train",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(output_dir),
        *options,
        *sets(overrides),
        timeout=timeout,
    )


def run_dir_from(stdout: str) -> Path:
    return Path([line for line in stdout.splitlines() if line.startswith("run directory: ")][-1].split()[-1])


@pytest.mark.slow
def test_more_decoded_photos_than_memory_train_from_a_chosen_cache_dir(cpu_image, tmp_path, no_leftovers):
    data_dir, cache_dir = tmp_path / "data", tmp_path / "my-cache"
    make_photos(data_dir / "photos" / "train", 1100, sizes=(32, 64))  # 3,300 photos of every kind
    make_photos(data_dir / "photos" / "test", 4, seed=1)
    overrides = [*PHOTO_OVERRIDES, "data.image_size=[224,224]", "training.batch_size=4", *TINY_MODEL]
    result = train(
        data_dir,
        tmp_path / "out",
        "--cache-dir",
        str(cache_dir),
        "--memory",
        MEMORY,
        overrides=overrides,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    record = json.loads((run_dir_from(result.stdout) / "manifest.json").read_text())
    assert record["status"] == "completed"
    decoded = sum(entry["bytes"] for entry in record["data"]["cache"]["entries"])
    assert decoded > MEMORY_BYTES, f"{decoded} bytes decoded: no more than the memory limit"
    on_host = sum(p.stat().st_size for p in cache_dir.glob("photos-*/images.npy"))
    assert on_host >= decoded, "the cache is in the directory the user chose"
    assert not (tmp_path / "out" / ".cache").exists()


def giant_png(path: Path, side: int = 8000) -> None:
    """A photo far larger than a phone's: cheap to write (flat colours), 192 MB decoded."""
    image = Image.new("RGB", (side, side), (40, 120, 200))
    ImageDraw.Draw(image).ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=(230, 60, 30))
    image.save(path, "PNG", compress_level=1)


# Few small files decode in the training process; more than 8 MB to read, in a pool.
@pytest.mark.parametrize(
    "per_class, sides", [(4, (24, 48)), (40, (240, 400))], ids=["in-process", "decoding-processes"]
)
def test_running_out_of_memory_while_decoding_blames_the_photos(
    cpu_image, tmp_path, no_leftovers, per_class, sides
):
    data_dir = tmp_path / "data"
    make_photos(data_dir / "photos" / "train", per_class, sizes=sides)
    for index in range(3):
        giant_png(data_dir / "photos" / "train" / "apples" / f"panorama-{index}.png")
    result = train(
        data_dir,
        tmp_path / "out",
        "--memory",
        "200m",
        overrides=[*PHOTO_OVERRIDES, "data.test=null", *TINY_MODEL],
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = trainbox_lines(output)
    # Killed in the main process (exit 137, explained by the host) or in a decoding process
    # (the training says so itself): either way the photos are named as the cause.
    assert "decoding photos" in line and "memory" in line and "--memory" in line, line


def test_a_full_cache_disk_is_one_line_and_the_run_goes_on_once_there_is_room(
    cpu_image, tmp_path, small_disk, no_leftovers
):
    data_dir = tmp_path / "data"
    # 150 photos of 400-800 px, 22.6 MB decoded at 224x224: decoded by a pool, for seconds.
    make_photos(data_dir / "photos" / "train", 50, sizes=(400, 800))
    overrides = [*PHOTO_OVERRIDES, "data.test=null", "data.image_size=[224,224]", *TINY_MODEL]
    command = [
        sys.executable,
        "-m",
        "invoke",
        "train",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(tmp_path / "out"),
        "--cache-dir",
        str(small_disk),
        *sets(overrides),
    ]

    # Too little room from the start: said before anything is decoded.
    blocker = small_disk / "blocker"
    blocker.write_bytes(b"\0" * (16 << 20))
    refused = invoke(*command[3:], timeout=600)
    (line,) = trainbox_lines(refused.stdout + refused.stderr)
    assert refused.returncode == 2 and "need" in line and "--cache-dir" in line, line
    blocker.unlink()

    # Room at the start, filled by someone else while the photos are decoded.
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while cache_rows_written(small_disk) == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        filler = fill(small_disk)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in output
    lines = trainbox_lines(output)
    assert len(lines) == 1, output[-3000:]
    (line,) = lines
    assert process.returncode == 2 and "is full after" in line and "what is decoded is kept" in line, line

    filler.unlink()
    again = invoke(*command[3:], timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "cache: resuming photos/train at image " in again.stdout

"""Figures of the decoded-image cache, each against a baseline measured in the same run.

    cached_vs_in_memory_throughput   training images/s streaming from the cache / the pipeline
                                     that held every image in memory (same model, same batches)
    first_pass_decode_speedup        images/s of the cache's first pass (Pillow, one process per
                                     CPU) / a plain single-process Pillow loop, same photos
    peak_memory_ratio_4x_data        peak anonymous memory of `invoke train` on 4N photos / on N

Host side: no TensorFlow. The first two run bench/cache_workload.py inside the image; the
third trains through `invoke train` and samples the container's memory from the engine.
Photos are made here, by tests/photos.py (every format and mode), never downloaded.

    python -m bench.cache_figures [--quick]      prints the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import docker
from bench import runs
from tests.photos import PHOTO_OVERRIDES, make_photos

TINY_MODEL = ["model.conv_filters=[4]", "model.dense_units=8"]


@dataclass(frozen=True)
class Sizes:
    throughput_photos: int  # per class
    throughput_epochs: int
    throughput_reps: int
    decode_photos: int  # per class
    memory_photos: int  # N, per class


QUICK = Sizes(
    throughput_photos=200, throughput_epochs=3, throughput_reps=1, decode_photos=60, memory_photos=100
)
FULL = Sizes(
    throughput_photos=600, throughput_epochs=5, throughput_reps=3, decode_photos=200, memory_photos=300
)


def photo_dir(work: Path, name: str, per_class: int, sizes: tuple[int, int]) -> Path:
    root = work / name
    make_photos(root / "photos" / "train", per_class, sizes=sizes)
    return root


def sets(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def cached_vs_in_memory_throughput(work: Path, sizes: Sizes) -> list[dict]:
    data_dir = photo_dir(work, "throughput", sizes.throughput_photos, (48, 160))
    overrides = [*PHOTO_OVERRIDES, "data.test=null", "data.image_size=[64,64]"]
    result = runs.script_in_image(
        [
            "throughput",
            "--epochs",
            str(sizes.throughput_epochs),
            "--reps",
            str(sizes.throughput_reps),
            "--work-dir",
            "/outputs",
            *sets(overrides),
        ],
        data_dir,
        Path(tempfile.mkdtemp(dir=work)),
        script="cache_workload.py",
        config=False,
    )
    images = result["train_images"]

    def rate(seconds: list[float]) -> float:
        return images / statistics.median(seconds[1:])

    rounds = result["rounds"]
    return [
        runs.figure(
            "cached_vs_in_memory_throughput",
            [rate(r["cached"]) / rate(r["in_memory"]) for r in rounds],
            "x",
            ">= 0.9",
            statistics.median(rate(r["in_memory"]) for r in rounds),
            "in-memory images/s",
            f"model.fit images/s, default model on {images} photos at 64x64 RGB, streamed from the "
            "decoded-image cache (memory map) / the same batches from one in-memory tf.constant (the "
            "pipeline before the cache); in the image, epochs after the first, one ratio per pair",
        )
    ]


def first_pass_decode(work: Path, sizes: Sizes) -> list[dict]:
    data_dir = photo_dir(work, "decode", sizes.decode_photos, (480, 1600))
    overrides = [*PHOTO_OVERRIDES, "data.test=null", "data.validation_split=0.0", "data.image_size=[224,224]"]
    result = runs.script_in_image(
        ["decode", "--work-dir", "/outputs", *sets(overrides)],
        data_dir,
        Path(tempfile.mkdtemp(dir=work)),
        script="cache_workload.py",
        config=False,
    )
    speedup = result["cache_images_per_s"] / result["plain_images_per_s"]
    return [
        runs.figure(
            "first_pass_decode_speedup",
            [speedup],
            "x",
            None,
            result["plain_images_per_s"],
            "plain Pillow loop images/s",
            f"images/s writing the cache ({result['processes']} decoding processes, one per CPU the "
            f"container may use) / a plain one-process Pillow loop (open, RGB, resize), the same "
            f"{result['images']} photos of 480-1600 px, every format and mode, to 224x224, in the image",
        ),
        runs.figure(
            "first_pass_decode_images_per_s",
            [result["cache_images_per_s"]],
            "images/s",
            None,
            result["plain_images_per_s"],
            "plain Pillow loop images/s",
            "first-pass decoding into the cache, same photos as first_pass_decode_speedup",
        ),
    ]


class PeakMemory:
    """Peak memory of one container from the engine's stats stream (about once a second)."""

    def __init__(self, client: docker.DockerClient, output_dir: Path) -> None:
        self.client, self.output_dir = client, output_dir
        self.anonymous = self.usage = 0
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _container(self):
        for container in self.client.containers.list(filters={"label": "trainbox.role=train"}):
            if any(m.get("Source") == str(self.output_dir) for m in container.attrs.get("Mounts", [])):
                return container
        return None

    def _follow(self) -> None:
        container = None
        for _ in range(6000):
            container = self._container()
            if container is not None:
                break
            threading.Event().wait(0.05)
        if container is None:
            return
        try:
            for stats in container.stats(stream=True, decode=True):
                memory = stats.get("memory_stats") or {}
                detail = memory.get("stats") or {}
                # cgroup v1: rss (+ shmem); v2: anon. Page cache is left out: the kernel gives it back.
                anonymous = detail.get("total_rss", detail.get("rss", 0)) + detail.get("total_shmem", 0)
                anonymous = anonymous or detail.get("anon", 0)
                self.anonymous = max(self.anonymous, anonymous)
                self.usage = max(self.usage, memory.get("usage", 0))
        except docker.errors.DockerException:
            return


def peak_memory_ratio(work: Path, sizes: Sizes) -> list[dict]:
    client = docker.from_env()
    overrides = [
        *PHOTO_OVERRIDES,
        "data.test=null",
        "data.image_size=[224,224]",
        *TINY_MODEL,
        "training.epochs=1",
    ]
    peaks, clock = {}, runs.ContainerClock()
    for scale in (1, 4):
        data_dir = photo_dir(work, f"memory-{scale}n", scale * sizes.memory_photos, (32, 64))
        output_dir = Path(tempfile.mkdtemp(dir=work))
        watch = PeakMemory(client, output_dir)
        runs.invoke_train(data_dir, output_dir, overrides, clock)
        watch.thread.join(timeout=10)
        peaks[scale] = watch
    clock.close()
    n = 3 * sizes.memory_photos
    return [
        runs.figure(
            "peak_memory_ratio_4x_data",
            [peaks[4].anonymous / peaks[1].anonymous],
            "x",
            "<= 1.2",
            peaks[1].anonymous / 1e6,
            f"peak MB at N={n}",
            f"peak anonymous memory (cgroup rss; the page cache is reclaimable and left out) of "
            f"`invoke train`, 1 epoch of 224x224 RGB photos, at 4N={4 * n} photos / at N={n}",
        ),
        runs.figure(
            "peak_container_usage_4x_data",
            [peaks[4].usage / peaks[1].usage],
            "x",
            None,
            peaks[1].usage / 1e6,
            f"peak MB at N={n}",
            "the same runs, peak memory usage as the engine reports it (page cache included)",
        ),
    ]


STEPS = (cached_vs_in_memory_throughput, first_pass_decode, peak_memory_ratio)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_figures", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    sizes = QUICK if parser.parse_args().quick else FULL
    work = Path(tempfile.mkdtemp(prefix="trainbox-bench-cache-"))
    work.chmod(0o755)
    try:
        figures = [item for step in STEPS for item in step(work, sizes)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

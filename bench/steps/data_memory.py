"""Memory does not grow with the dataset (issue 14): peak memory of `invoke train` on 4N
photos against N, sampled from the engine's stats stream while the container runs."""

from __future__ import annotations

import threading
from pathlib import Path

import docker
from app import settings
from bench import photos, runs
from bench.figure import Baseline, Figure, Goal
from bench.step import Context, Step

TINY_MODEL = ("model.conv_filters=[4]", "model.dense_units=8", "training.epochs=1")


class PeakMemory:
    """Peak memory of the training container writing into `output_dir` (about once a second)."""

    def __init__(self, client: docker.DockerClient, output_dir: Path) -> None:
        self.client, self.output_dir = client, output_dir
        self.anonymous = self.usage = 0
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _container(self):
        found = self.client.containers.list(filters={"label": f"{settings.ROLE_LABEL}=train"})
        for container in found:
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
                # cgroup v1: rss (+ shmem); v2: anon. The page cache is left out: the kernel gives it back.
                anonymous = detail.get("total_rss", detail.get("rss", 0)) + detail.get("total_shmem", 0)
                self.anonymous = max(self.anonymous, anonymous or detail.get("anon", 0))
                self.usage = max(self.usage, memory.get("usage", 0))
        except docker.errors.DockerException:
            return


def measure(ctx: Context) -> list[Figure]:
    per_class = ctx.plan.choose(quick=60, full=300)
    overrides = [*photos.PHOTO_OVERRIDES, "data.test=null", "data.image_size=[224,224]", *TINY_MODEL]
    peaks = {}
    for scale in (1, 4):
        ctx.echo(f"peak memory of invoke train on {scale * 3 * per_class} photos ...")
        data_dir = ctx.work / f"memory-{scale}n"
        photos.make_photos(data_dir / "photos" / "train", scale * per_class, sizes=(32, 64))
        output_dir = ctx.outputs(f"memory-{scale}n")
        watch = PeakMemory(ctx.client, output_dir)
        runs.invoke_train(data_dir, output_dir, overrides, ctx.clock)
        watch.thread.join(timeout=10)
        peaks[scale] = watch
    n = 3 * per_class
    return [
        Figure(
            name="peak_memory_ratio_4x_data",
            unit="x",
            samples=(peaks[4].anonymous / peaks[1].anonymous,),
            goal=Goal(at_most=1.2),
            baseline=Baseline(label=f"peak MB at N={n}", samples=(peaks[1].anonymous / 1e6,)),
            definition=f"peak anonymous memory (cgroup rss; the page cache is reclaimable and left out) "
            f"of `invoke train`, 1 epoch of 224x224 RGB photos, at 4N={4 * n} photos / at N={n}",
        ),
        Figure(
            name="peak_container_usage_4x_data",
            unit="x",
            samples=(peaks[4].usage / peaks[1].usage,),
            baseline=Baseline(label=f"peak MB at N={n}", samples=(peaks[1].usage / 1e6,)),
            definition="the same runs, peak memory usage as the engine reports it (page cache included)",
        ),
    ]


STEP = Step(
    name="data_memory", figures=("peak_memory_ratio_4x_data", "peak_container_usage_4x_data"), measure=measure
)

"""Start-up (issue 14): `import tensorflow, keras` in the image against natively, whole
process, and where the difference goes (the import itself, pages read through the storage
driver). The host needs TensorFlow for the native side (CI installs the lock's
tensorflow-cpu)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from app import settings
from bench import runs
from bench.figure import Baseline, Figure, paired_ratios
from bench.pairing import alternating
from bench.step import Context, Step

TIMED_IMPORT = (
    "import time, resource; t = time.perf_counter(); import tensorflow, keras; "
    "r = resource.getrusage(resource.RUSAGE_SELF); "
    "print(time.perf_counter() - t, r.ru_utime + r.ru_stime, r.ru_majflt)"
)
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}
LABELS = [
    "--label",
    f"{settings.PROJECT_LABEL}={settings.PROJECT_NAME}",
    "--label",
    f"{settings.ROLE_LABEL}=bench",
]


def timed(command: list[str]) -> dict[str, float]:
    """Whole-process wall seconds, and what TIMED_IMPORT printed: import s, CPU s, major faults."""
    started = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=600, env={**os.environ, **QUIET}
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise runs.BenchError(f"{command[0]} exited {result.returncode}: {result.stderr[-300:]}")
    import_s, cpu_s, faults = (float(x) for x in result.stdout.split()[-3:])
    return {"wall": wall, "import": import_s, "cpu": cpu_s, "faults": faults}


def native() -> dict[str, float]:
    return timed([sys.executable, "-c", TIMED_IMPORT])


def in_container() -> dict[str, float]:
    return timed(["docker", "run", "--rm", *LABELS, "-e", "TF_CPP_MIN_LOG_LEVEL=3", runs.image(),
                  "python", "-c", TIMED_IMPORT])  # fmt: skip


def empty_container() -> float:
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", *LABELS, runs.image(), "true"], capture_output=True, check=True,
                   timeout=300)  # fmt: skip
    return time.perf_counter() - started


def measure(ctx: Context) -> list[Figure]:
    reps = ctx.plan.choose(quick=1, full=5)
    ctx.echo(f"import tensorflow, keras: in the image vs natively, {reps} pair(s) ...")
    pairs = alternating(reps, {"native": native, "container": in_container})
    empty = tuple(empty_container() for _ in range(reps))

    def side(name: str, key: str) -> tuple[float, ...]:
        return tuple(pair[name][key] for pair in pairs)

    return [
        Figure(
            name="import_tf_container_vs_native",
            unit="x",
            samples=paired_ratios(list(side("container", "wall")), list(side("native", "wall"))),
            baseline=Baseline(label="native process s", samples=side("native", "wall")),
            definition="wall time of `docker run --rm IMAGE python -c 'import tensorflow, keras'` / the "
            f"same `python -c` natively; `docker run IMAGE true` alone: {min(empty):.2f} s",
        ),
        Figure(
            name="import_tf_in_container_s",
            unit="s",
            samples=side("container", "import"),
            baseline=Baseline(label="native s", samples=side("native", "import")),
            definition="the import alone, timed inside the process (its CPU seconds are in "
            "results.json's samples of import_tf_cpu_s)",
        ),
        Figure(
            name="import_tf_cpu_s",
            unit="s",
            samples=side("container", "cpu"),
            baseline=Baseline(label="native CPU s", samples=side("native", "cpu")),
            definition="CPU seconds (user + system) of the import inside the container",
        ),
        Figure(
            name="container_major_faults",
            unit="pages",
            samples=side("container", "faults"),
            definition="major page faults of the import: pages of shared libraries read through the "
            "storage driver",
        ),
        # Not a baseline: natively the count is often 0 (the libraries sit in the page cache).
        Figure(
            name="native_major_faults",
            unit="pages",
            samples=side("native", "faults"),
            definition="major page faults of the same import natively, in the same run",
        ),
    ]


STEP = Step(
    name="startup",
    figures=("import_tf_container_vs_native", "import_tf_in_container_s", "import_tf_cpu_s",
             "container_major_faults", "native_major_faults"),
    measure=measure,
)  # fmt: skip

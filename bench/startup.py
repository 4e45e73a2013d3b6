"""Start-up: `import tensorflow, keras` in the image against natively, and where it goes.

    import_tf_container_vs_native   whole process: `docker run --rm IMAGE python -c "import
                                    tensorflow, keras"` / the same `python -c` on the host
    import_tf_in_container_s        the import alone, timed inside the container
    container_major_faults          pages the import reads from the image's file system

The host needs TensorFlow for the native side (CI installs the lock's tensorflow-cpu).
Every pair runs back to back, alternating which side goes first.

    python -m bench.startup [--reps N]           prints the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench import runs

TIMED_IMPORT = (
    "import time, resource; t = time.perf_counter(); import tensorflow, keras; "
    "r = resource.getrusage(resource.RUSAGE_SELF); "
    "print(time.perf_counter() - t, r.ru_utime + r.ru_stime, r.ru_majflt)"
)
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def _timed(command: list[str]) -> tuple[float, list[float]]:
    """(whole-process wall seconds, [import s, CPU s, major faults] printed by TIMED_IMPORT)."""
    started = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=600, env={**os.environ, **QUIET}
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise runs.BenchError(f"{command[0]} exited {result.returncode}: {result.stderr[-300:]}")
    return wall, [float(x) for x in result.stdout.split()[-3:]]


def native() -> tuple[float, list[float]]:
    return _timed([sys.executable, "-c", TIMED_IMPORT])


def container(image: str = runs.image()) -> tuple[float, list[float]]:
    return _timed(
        [
            "docker",
            "run",
            "--rm",
            "--label",
            "trainbox.project=trainbox",
            "--label",
            "trainbox.role=bench",
            "-e",
            "TF_CPP_MIN_LOG_LEVEL=3",
            image,
            "python",
            "-c",
            TIMED_IMPORT,
        ]
    )


def docker_run_true(image: str = runs.image()) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--label", "trainbox.project=trainbox", image, "true"],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return time.perf_counter() - started


def figures(reps: int) -> list[dict]:
    pairs = []
    for rep in range(reps):
        sides = (native, container) if rep % 2 == 0 else (container, native)
        measured = {side.__name__: side() for side in sides}
        pairs.append(measured)
    empty = statistics.median(docker_run_true() for _ in range(reps))
    native_wall = statistics.median(p["native"][0] for p in pairs)
    container_cpu = statistics.median(p["container"][1][1] for p in pairs)
    native_cpu = statistics.median(p["native"][1][1] for p in pairs)
    return [
        runs.figure(
            "import_tf_container_vs_native",
            [p["container"][0] / p["native"][0] for p in pairs],
            "x",
            None,
            native_wall,
            "native process s",
            "wall time of `docker run --rm IMAGE python -c 'import tensorflow, keras'` / `python -c` the "
            f"same natively; `docker run IMAGE true` alone: {empty:.2f} s",
        ),
        runs.figure(
            "import_tf_in_container_s",
            [p["container"][1][0] for p in pairs],
            "s",
            None,
            statistics.median(p["native"][1][0] for p in pairs),
            "native s",
            f"the import alone, timed inside the process (CPU s: {container_cpu:.2f} inside the "
            f"container, {native_cpu:.2f} natively)",
        ),
        runs.figure(
            "container_major_faults",
            [p["container"][1][2] for p in pairs],
            "pages",
            None,
            statistics.median(p["native"][1][2] for p in pairs),
            "native",
            "major page faults of the import: pages of shared libraries read through the storage driver",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    print(json.dumps(figures(parser.parse_args().reps), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

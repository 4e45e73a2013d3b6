"""TensorFlow thread pools sized to the container's CPU allowance.

TensorFlow sizes its intra-op and inter-op pools from the host's core count, which a
container limited with `--cpus` does not change: on a 16-core host with `--cpus 2` it
runs 16 busy threads on 2 CPUs' worth of quota and gets throttled. The quota is in the
cgroup (v2: cpu.max, v1: cpu.cfs_quota_us / cpu.cfs_period_us); when there is one, both
pools get ceil(quota / period) threads. Must run before TensorFlow executes any op.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """CPUs the cgroup quota allows (e.g. 1.5), or None when unlimited or unknown."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def threads_for(limit: float | None, cores: int | None) -> int | None:
    """Pool size for a CPU limit: never more threads than cores, at least one."""
    if limit is None:
        return None
    return max(1, min(math.ceil(limit), cores or math.ceil(limit)))


def configure(root: Path = CGROUP, fixed: int | None = None) -> dict:
    """Size TensorFlow's pools: `fixed` when given (portable determinism, a replayed run),
    else from the quota (when present); returns what was decided."""
    import tensorflow as tf

    limit = cgroup_cpu_limit(root)
    threads = fixed or threads_for(limit, os.cpu_count())
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already started (e.g. a notebook): keep its pools
            threads = None
    return {"cgroup_cpu_limit": limit, "threads": threads or "tensorflow default (host cores)"}

"""The run's numerics, in the container: `prepare` sets what must be set before TensorFlow
loads (oneDNN reads its variables once, when it starts), `record` writes down what the run
computes with once it has.

The oneDNN ISA is derived from /proc/cpuinfo and ONEDNN_MAX_CPU_ISA the way oneDNN
chooses it: TensorFlow's build exports no query for it, and ONEDNN_VERBOSE, which prints
it, stays on for every later primitive. On this project's hosts the derivation matched
what ONEDNN_VERBOSE printed (see README, "Reproducible on another machine").
"""

from __future__ import annotations

import os
import sys

from app import numerics
from app.config import Config
from app.train.errors import UserError


def prepare(config: Config, environ=os.environ) -> dict[str, str]:
    """Set the variables the run's determinism mode needs; returns what it set."""
    wanted = numerics.environment_for(config.deterministic, environ)
    if wanted and "tensorflow" in sys.modules:
        raise UserError("deterministic: portable needs a fresh process: TensorFlow is already loaded")
    environ.update(wanted)
    return wanted


def pool_size(config: Config, replayed: int | None) -> int | None:
    """The thread pools' fixed size: portable's constant, else the one `invoke reproduce`
    replays, else None (sized from the CPU quota)."""
    if numerics.is_portable(config.deterministic):
        return numerics.PORTABLE_THREADS
    return replayed


def jit_compile(config: Config) -> bool | str:
    """XLA compiles for the CPU it runs on, so a portable run never uses it."""
    return False if numerics.is_portable(config.deterministic) else config.training.jit_compile


def record(config: Config, environ=os.environ) -> dict:
    """The manifest's `numerics`: what decides the weights besides the config and the data."""
    import keras
    import numpy
    import tensorflow as tf

    cpu = numerics.cpu_facts(numerics.read_cpuinfo())
    cap = environ.get(numerics.ISA_CAP_VARIABLE)
    return {
        "mode": "portable" if numerics.is_portable(config.deterministic) else config.deterministic,
        **cpu,
        "onednn_isa": numerics.effective_isa(cpu["cpu_isa_flags"], cap),
        "onednn_isa_cap": cap,
        "onednn_isa_source": "derived: /proc/cpuinfo flags lowered to ONEDNN_MAX_CPU_ISA",
        "onednn_opts": environ.get(numerics.ONEDNN_OPTS_VARIABLE, "1") not in {"0", "false", "False"},
        "intra_op_threads": pool_in_use(tf.config.threading.get_intra_op_parallelism_threads()),
        "inter_op_threads": pool_in_use(tf.config.threading.get_inter_op_parallelism_threads()),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "jit_compile": jit_compile(config),
        "precision": config.training.precision,
        "gpu": gpu_facts(tf),
    }


def pool_in_use(configured: int) -> int:
    """A pool's real size: TensorFlow reports 0 for its default, the CPUs this process may
    run on (so two machines with different core counts do not both record 0)."""
    if configured > 0:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_facts(tf) -> dict | None:
    """The first GPU's model, compute capability, driver, CUDA and cuDNN versions; None on a
    CPU host. Untested here (no GPU): every lookup is allowed to fail and then says so."""
    try:
        gpus = tf.config.list_physical_devices("GPU")
    except Exception:  # a broken CUDA setup must not fail the run's record
        return None
    if not gpus:
        return None
    facts: dict = {"count": len(gpus)}
    try:
        details = tf.config.experimental.get_device_details(gpus[0])
        facts["model"] = details.get("device_name", "unknown")
        facts["compute_capability"] = ".".join(str(n) for n in details.get("compute_capability", ()))
    except Exception as error:
        facts["model"] = f"unknown ({type(error).__name__})"
    try:
        build = tf.sysconfig.get_build_info()
        facts["cuda"] = build.get("cuda_version")
        facts["cudnn"] = build.get("cudnn_version")
    except Exception:
        facts["cuda"] = facts["cudnn"] = "unknown"
    facts["driver"] = nvidia_driver()
    return facts


def nvidia_driver(path: str = "/proc/driver/nvidia/version") -> str:
    """The kernel driver's version line ('NVRM version: ... 550.54.14 ...'), as the kernel says it."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
    except OSError:
        return "unknown"
    words = [word for word in first.split() if word.count(".") >= 1 and word[0].isdigit()]
    return words[0] if words else first.strip() or "unknown"

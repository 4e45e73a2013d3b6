"""The numerics of a run, TF-free: what the CPU offers, which oneDNN ISA that gives, what
`deterministic: portable` pins, and which recorded facts explain other weights.

Shared by the container (which records them before and after TensorFlow loads) and the
host (`invoke reproduce` replays them and names what differs), so nothing here may import
tensorflow, numpy or docker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app import container_env

CPUINFO = Path("/proc/cpuinfo")
ISA_CAP_VARIABLE = container_env.ISA_CAP
ONEDNN_OPTS_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"

# oneDNN's x86 ISA levels, lowest first, each with the /proc/cpuinfo flags it needs
# (oneDNN's cpu_isa_traits; the names are the values ONEDNN_MAX_CPU_ISA accepts).
ONEDNN_ISAS: tuple[tuple[str, frozenset[str]], ...] = (
    ("SSE41", frozenset({"sse4_1"})),
    ("AVX", frozenset({"avx"})),
    ("AVX2", frozenset({"avx", "avx2", "fma"})),
    ("AVX2_VNNI", frozenset({"avx2", "fma", "avx_vnni"})),
    ("AVX512_CORE", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})),
    ("AVX512_CORE_VNNI", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"})),
    (
        "AVX512_CORE_BF16",
        frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}),
    ),
    (
        "AVX10_1_512",  # oneDNN also accepts AVX512_CORE_FP16 for it
        frozenset(
            {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "avx512_fp16"}
        ),
    ),
    (
        "AVX512_CORE_AMX",
        frozenset(
            {
                "avx512f",
                "avx512bw",
                "avx512_vnni",
                "avx512_bf16",
                "avx512_fp16",
                "amx_tile",
                "amx_int8",
                "amx_bf16",
            }
        ),
    ),
)
ISA_NAMES = tuple(name for name, _ in ONEDNN_ISAS)
_ISA_FLAG_PREFIXES = ("sse", "ssse", "avx", "fma", "amx", "f16c")

# `deterministic: portable`: the lowest oneDNN ISA any x86-64 CPU that runs TensorFlow has,
# and pools of a fixed size (Eigen and oneDNN split work by pool size, so the quota must not
# choose it). Measured: each of ISA cap and pool size alone changes the weights.
PORTABLE_ISA = "SSE41"
PORTABLE_THREADS = 2

# Recorded facts that change the weights when they change, in the order they are named.
WEIGHT_FACTS = (
    "mode",
    "tensorflow",
    "keras",
    "numpy",
    "gpu",
    "onednn_isa",
    "onednn_opts",
    "intra_op_threads",
    "jit_compile",
    "precision",
    "cpu_model",
)


def read_cpuinfo(path: Path = CPUINFO) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_facts(cpuinfo: str) -> dict[str, Any]:
    """The first CPU's model and its ISA-related flags (sse*, avx*, fma, amx*, f16c), sorted."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # one processor block is enough: containers see the same CPUs
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = (fields.get("flags") or fields.get("Features") or "").split()
    return {
        "cpu_model": fields.get("model name") or fields.get("CPU part") or "unknown",
        "cpu_isa_flags": sorted(flag for flag in flags if flag.startswith(_ISA_FLAG_PREFIXES)),
    }


def isa_rank(name: str | None) -> int | None:
    """Position of an ISA name among oneDNN's levels (case-insensitive), None if unknown."""
    upper = (name or "").strip().upper()
    return ISA_NAMES.index(upper) if upper in ISA_NAMES else None


def highest_isa(flags: Iterable[str]) -> str | None:
    """The highest oneDNN ISA these CPU flags allow, None when not even SSE4.1 (not x86)."""
    have = set(flags)
    found = None
    for name, needs in ONEDNN_ISAS:
        if needs <= have:
            found = name
    return found


def effective_isa(flags: Iterable[str], cap: str | None) -> str | None:
    """What oneDNN dispatches to: the CPU's highest ISA, lowered to a known cap (oneDNN
    ignores a cap it does not know)."""
    best = highest_isa(flags)
    cap_rank, best_rank = isa_rank(cap), isa_rank(best)
    if best_rank is None or cap_rank is None:
        return best
    return ISA_NAMES[min(best_rank, cap_rank)]


def is_portable(deterministic: bool | str) -> bool:
    return deterministic == "portable"


def environment_for(deterministic: bool | str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set before TensorFlow loads: in portable mode oneDNN on (its ISA
    pin also covers the matrix products Eigen hands to oneDNN's sgemm when it is off) and
    capped at the lowest ISA, lower than any cap already set, never higher; nothing otherwise."""
    if not is_portable(deterministic):
        return {}
    return {ONEDNN_OPTS_VARIABLE: "1", ISA_CAP_VARIABLE: PORTABLE_ISA}


def replay(recorded: Mapping[str, Any] | None, host_flags: Iterable[str]) -> dict[str, Any]:
    """What `invoke reproduce` gives a re-run of a `deterministic: true` run so it computes
    as recorded: `threads` (the intra-op pool size) and `isa_cap` (the recorded oneDNN ISA,
    when this CPU has it), as LaunchFacts fields. Portable runs pin both themselves."""
    if not recorded or recorded.get("mode") == "portable":
        return {}
    facts: dict[str, Any] = {}
    isa, host_rank = recorded.get("onednn_isa"), isa_rank(highest_isa(host_flags))
    if isa_rank(isa) is not None and host_rank is not None and isa_rank(isa) <= host_rank:
        facts["isa_cap"] = str(isa)
    threads = recorded.get("intra_op_threads")
    if isinstance(threads, int) and 0 < threads <= 4096:
        facts["threads"] = threads
    return facts


def cannot_replay(recorded: Mapping[str, Any] | None, host: Mapping[str, Any]) -> list[str]:
    """Recorded facts this host cannot give a re-run, one line each (empty when it can):
    a GPU run on a host without that GPU, an ISA this CPU lacks (outside portable mode)."""
    if not recorded:
        return []
    lines = []
    gpu = recorded.get("gpu")
    if gpu and not host.get("gpu"):
        lines.append(f"the run trained on GPU {gpu.get('model', gpu)}; this host has no GPU for it")
    isa, flags = recorded.get("onednn_isa"), host.get("cpu_isa_flags") or ()
    host_isa = highest_isa(flags)
    if (
        flags  # no /proc/cpuinfo here (e.g. macOS): nothing known to compare with
        and recorded.get("mode") != "portable"
        and isa_rank(isa) is not None
        and isa_rank(isa) > (isa_rank(host_isa) if host_isa else -1)
    ):
        lines.append(
            f"the run used oneDNN ISA {isa}; this CPU ({host.get('cpu_model', 'unknown')}) "
            f"offers at most {host_isa or 'none'}"
        )
    return lines


def differences(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """The weight-relevant recorded facts that differ between two runs' `numerics`, one line
    each ("numerics.onednn_isa: AVX512_CORE_BF16 -> AVX2"); empty when they agree or one
    side recorded none (an older manifest)."""
    if not old or not new:
        return []
    return [
        f"numerics.{key}: {old.get(key)} -> {new.get(key)}"
        for key in WEIGHT_FACTS
        if old.get(key) != new.get(key)
    ]

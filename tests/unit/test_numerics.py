"""app/numerics.py: the CPU facts, the oneDNN ISA they give, what portable pins, what
`invoke reproduce` replays and what it says it cannot."""

from __future__ import annotations

import sys

import pytest

from app import numerics
from app.config import ConfigError, load_config
from app.container_env import LaunchFacts

# Two processors of this project's CI host, as /proc/cpuinfo shows them (flags shortened).
EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl \
avx512_vnni avx512_bf16 avx_vnni hypervisor

processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse
"""
HASWELL_FLAGS = ["sse", "sse2", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c"]
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes\nCPU part\t: 0xd0c\n"


def test_cpu_facts_take_the_first_processor_and_only_isa_flags():
    facts = numerics.cpu_facts(EPYC)
    assert facts["cpu_model"] == "AMD EPYC"
    assert "hypervisor" not in facts["cpu_isa_flags"] and "fpu" not in facts["cpu_isa_flags"]
    assert facts["cpu_isa_flags"] == sorted(facts["cpu_isa_flags"])
    assert {"avx512_bf16", "sse4_1", "fma", "f16c"} <= set(facts["cpu_isa_flags"])


def test_a_cpu_that_is_not_x86_has_no_onednn_x86_isa():
    facts = numerics.cpu_facts(ARM)
    assert facts == {"cpu_model": "0xd0c", "cpu_isa_flags": []}
    assert numerics.effective_isa(facts["cpu_isa_flags"], None) is None
    assert numerics.cpu_facts("") == {"cpu_model": "unknown", "cpu_isa_flags": []}


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        (None, "AVX512_CORE_BF16"),  # what ONEDNN_VERBOSE printed on this host without a cap
        ("AVX2", "AVX2"),
        ("sse41", "SSE41"),  # oneDNN reads the cap case-insensitively
        ("AVX512_CORE_AMX", "AVX512_CORE_BF16"),  # a cap never raises the ISA above the CPU's
        ("NO_SUCH_ISA", "AVX512_CORE_BF16"),  # oneDNN ignores a cap it does not know
    ],
)
def test_effective_isa_is_the_cpus_best_lowered_to_the_cap(cap, expected):
    assert numerics.effective_isa(numerics.cpu_facts(EPYC)["cpu_isa_flags"], cap) == expected


def test_an_avx2_cpu_gets_avx2_and_never_avx512():
    assert numerics.highest_isa(HASWELL_FLAGS) == "AVX2"
    assert numerics.effective_isa(HASWELL_FLAGS, "AVX512_CORE") == "AVX2"


def test_portable_pins_the_lowest_isa_with_onednn_on_and_the_other_modes_set_nothing():
    assert numerics.environment_for("portable", {}) == {
        "TF_ENABLE_ONEDNN_OPTS": "1",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    }
    assert numerics.ISA_NAMES[0] == numerics.PORTABLE_ISA
    assert numerics.environment_for(True, {}) == numerics.environment_for(False, {}) == {}


def test_reproduce_replays_a_true_runs_pools_and_isa_when_this_cpu_has_it():
    recorded = {"mode": True, "onednn_isa": "AVX2", "intra_op_threads": 1}
    epyc = numerics.cpu_facts(EPYC)["cpu_isa_flags"]
    assert numerics.replay(recorded, epyc) == {"isa_cap": "AVX2", "threads": 1}
    avx512 = {**recorded, "onednn_isa": "AVX512_CORE_BF16"}
    assert numerics.replay(avx512, HASWELL_FLAGS) == {"threads": 1}  # no ISA it cannot have
    assert numerics.replay({**recorded, "mode": "portable"}, epyc) == {}  # it pins its own
    assert numerics.replay(None, epyc) == {}  # a manifest from before numerics were recorded


def test_replayed_facts_reach_the_container_as_its_variables():
    facts = LaunchFacts(image_id="sha256:x", threads=1, isa_cap="AVX2")
    environment = facts.to_environment()
    assert environment["TRAINBOX_THREADS"] == "1" and environment["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert LaunchFacts.from_environment(environment) == facts
    with pytest.raises(ValueError, match="TRAINBOX_THREADS='0' is not a thread count"):
        LaunchFacts.from_environment({"TRAINBOX_THREADS": "0"})


def test_what_this_host_cannot_replay_is_named():
    host = {**numerics.cpu_facts(EPYC), "gpu": False}
    gpu_run = {"mode": True, "gpu": {"model": "NVIDIA A100-SXM4-40GB"}, "onednn_isa": "AVX2"}
    assert numerics.cannot_replay(gpu_run, host) == [
        "the run trained on GPU NVIDIA A100-SXM4-40GB; this host has no GPU for it"
    ]
    amx_run = {"mode": True, "onednn_isa": "AVX512_CORE_AMX", "gpu": None}
    assert numerics.cannot_replay(amx_run, host) == [
        "the run used oneDNN ISA AVX512_CORE_AMX; this CPU (AMD EPYC) offers at most AVX512_CORE_BF16"
    ]
    assert numerics.cannot_replay({**amx_run, "mode": "portable"}, host) == []
    assert numerics.cannot_replay(None, host) == []
    assert numerics.cannot_replay(amx_run, {"cpu_model": "unknown", "cpu_isa_flags": []}) == []


def test_portable_is_a_third_determinism_mode_and_refuses_xla():
    assert load_config(None, ["deterministic=portable"]).deterministic == "portable"
    assert load_config(None, ["deterministic=false"]).deterministic is False
    with pytest.raises(ConfigError, match="'deterministic': must be true, false or portable"):
        load_config(None, ["deterministic=maybe"])
    with pytest.raises(ConfigError, match=r"^config: training\.jit_compile: true cannot be portable"):
        load_config(None, ["deterministic=portable", "training.jit_compile=true"])


def test_portable_cannot_be_set_up_once_tensorflow_is_loaded(monkeypatch):
    from app.train import numerics as train_numerics
    from app.train.errors import UserError

    config = load_config(None, ["deterministic=portable"])
    environ: dict[str, str] = {}
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    assert train_numerics.prepare(config, environ) == numerics.environment_for("portable", {})
    assert environ["ONEDNN_MAX_CPU_ISA"] == "SSE41"
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    with pytest.raises(UserError, match="needs a fresh process"):
        train_numerics.prepare(config, {})
    assert train_numerics.prepare(load_config(None, []), {}) == {}  # true needs nothing before
    assert train_numerics.pool_size(config, replayed=8) == numerics.PORTABLE_THREADS
    assert train_numerics.pool_size(load_config(None, []), replayed=8) == 8


def test_the_manifest_schema_types_the_numerics_record():
    from app.manifest import parse_record

    numerics_record = {
        "mode": "portable",
        "cpu_model": "AMD EPYC",
        "cpu_isa_flags": ["avx", "sse4_1"],
        "onednn_isa": "SSE41",
        "onednn_opts": True,
        "intra_op_threads": 2,
        "inter_op_threads": 2,
        "tensorflow": "2.21.0",
        "keras": "3.15.1",
        "numpy": "2.4.6",
        "jit_compile": False,
        "precision": "float32",
        "gpu": None,
    }
    record = parse_record({"run_id": "r1", "status": "completed", "numerics": numerics_record})
    assert record.numerics.onednn_isa == "SSE41"
    assert record.to_json()["numerics"] == numerics_record  # written back as it was read
    with pytest.raises(ValueError, match=r"'numerics\.intra_op_threads'"):
        parse_record(
            {
                "run_id": "r1",
                "status": "completed",
                "numerics": {**numerics_record, "intra_op_threads": "two"},
            }
        )


def test_a_default_pool_is_recorded_by_its_real_size_not_tensorflows_zero():
    import os

    from app.train.numerics import pool_in_use

    assert pool_in_use(3) == 3
    assert pool_in_use(0) == len(os.sched_getaffinity(0))

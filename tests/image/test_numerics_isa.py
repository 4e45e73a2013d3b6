"""The oneDNN ISA the manifest records (derived from /proc/cpuinfo and the cap) is the one
oneDNN itself reports with ONEDNN_VERBOSE, with no cap and with the matrix's two caps."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from app import numerics
from tests.helpers import skip_or_fail

pytestmark = pytest.mark.image

# oneDNN 3.x's own names for its ISA levels, as ONEDNN_VERBOSE prints them.
VERBOSE_NAMES = {
    "Intel SSE4.1": "SSE41",
    "Intel AVX": "AVX",
    "Intel AVX2": "AVX2",
    "Intel AVX2 with Intel DL Boost": "AVX2_VNNI",
    "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions": "AVX512_CORE",
    "Intel AVX-512 with Intel DL Boost": "AVX512_CORE_VNNI",
    "Intel AVX-512 with Intel DL Boost and bfloat16 support": "AVX512_CORE_BF16",
    "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support": "AVX10_1_512",
}
PROBE = (
    "import tensorflow as tf\n"
    "tf.nn.conv2d(tf.ones([1, 8, 8, 3]), tf.ones([3, 3, 3, 4]), 1, 'SAME')\n"  # a oneDNN primitive
)


def isa_reported_by_onednn(cap: str | None) -> str:
    environ = {k: v for k, v in os.environ.items() if k != numerics.ISA_CAP_VARIABLE}
    environ |= {"ONEDNN_VERBOSE": "profile_create", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if cap:
        environ[numerics.ISA_CAP_VARIABLE] = cap
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r"^onednn_verbose,.*,cpu,isa:(.+)$", result.stdout, re.M)
    assert found, result.stdout[-2000:]
    return VERBOSE_NAMES.get(found.group(1).strip(), found.group(1).strip())


@pytest.mark.parametrize("cap", [None, "AVX2", "SSE41"])
def test_the_derived_isa_is_the_one_onednn_reports(cap):
    flags = numerics.cpu_facts(numerics.read_cpuinfo())["cpu_isa_flags"]
    if numerics.highest_isa(flags) is None:
        skip_or_fail("not an x86 CPU: oneDNN has no x86 ISA here")
    assert numerics.effective_isa(flags, cap) == isa_reported_by_onednn(cap)

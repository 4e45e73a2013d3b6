"""Command-line numbers and sizes: parsed once, a wrong one is a usage error naming the option."""

from __future__ import annotations

import pytest

from app.launch import options
from app.launch.containers import DEFAULT_SHM_SIZE, Limits
from app.launch.errors import UsageError


@pytest.mark.parametrize(("value", "expected"), [("2", 2), (" 3 ", 3), (1, 1)])
def test_counts(value, expected):
    assert options.parse_count(value, "--workers") == expected


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", "", "2 workers"])
def test_bad_counts(value):
    with pytest.raises(UsageError, match=r"--workers .*whole number of 1 or more"):
        options.parse_count(value, "--workers")


@pytest.mark.parametrize(("value", "expected"), [("1.5", 1.5), ("2", 2.0), ("0.01", 0.01)])
def test_cpus(value, expected):
    assert options.parse_cpus(value) == expected


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", ""])
def test_bad_cpus(value):
    with pytest.raises(UsageError, match=r"--cpus .*number of CPUs above 0"):
        options.parse_cpus(value)


@pytest.mark.parametrize("value", ["4g", "600m", "1.5g", "4 g", "7000000"])
def test_memory_sizes_are_kept_as_given(value):
    assert options.parse_size(value, "--memory", minimum=options.MIN_MEMORY_BYTES) == value.strip()


@pytest.mark.parametrize("value", ["garbage", "4x", "", "1k", "-1g", "0"])
def test_bad_memory_sizes(value):
    with pytest.raises(UsageError, match=r"--memory .*at least 6m with a unit"):
        options.parse_size(value, "--memory", minimum=options.MIN_MEMORY_BYTES)


@pytest.mark.parametrize(("value", "expected"), [("8890", 8890), ("1", 1), ("65535", 65535)])
def test_ports(value, expected):
    assert options.parse_port(value) == expected


@pytest.mark.parametrize("value", ["x", "0", "65536", "-1", "88.5", ""])
def test_bad_ports(value):
    with pytest.raises(UsageError, match=r"--port .*from 1 to 65535"):
        options.parse_port(value)


def test_limits_default_and_parsed():
    assert options.limits() == Limits(shm_size=DEFAULT_SHM_SIZE)
    parsed = options.limits(cpus="1.5", memory="4g", shm_size="2g")
    assert parsed == Limits(cpus=1.5, memory="4g", shm_size="2g")
    with pytest.raises(UsageError, match="--shm-size x"):
        options.limits(shm_size="x")

"""The host <-> container contract: what the host sets is what the container reads."""

from __future__ import annotations

import pytest

from app.container_env import SLURM_PORT_BASE, SWEEP_ID, SWEEP_TRIAL, LaunchFacts


def test_launch_facts_round_trip_through_the_environment():
    facts = LaunchFacts(
        image_id="sha256:0123",
        image_tag="trainbox:cpu",
        image_code_sha256="c0de" * 16,
        git_commit="abc123",
        git_dirty=True,
        launched_by_invoke=True,
        reproduces="20261125-180512-3fa9c2",
        slurm_port_base=31000,
        sweep_id="20261207-170000-abcdef",
        sweep_trial=3,
    )
    assert LaunchFacts.from_environment(facts.to_environment()) == facts


def test_nothing_set_is_unknown():
    assert LaunchFacts.from_environment({}) == LaunchFacts()


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_a_bad_slurm_port_base_is_one_line_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"{SLURM_PORT_BASE}=") as caught:
        LaunchFacts.from_environment({SLURM_PORT_BASE: value})
    assert "\n" not in str(caught.value)


def test_a_bad_sweep_trial_is_one_line_naming_the_variable():
    with pytest.raises(ValueError, match=f"{SWEEP_TRIAL}="):
        LaunchFacts.from_environment({SWEEP_ID: "s1", SWEEP_TRIAL: "two"})

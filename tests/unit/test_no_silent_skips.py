"""Where CI is set, a check that cannot run fails: no test skips itself past skip_or_fail."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO_ROOT, skip_or_fail

DIRECT_SKIPS = re.compile(r"pytest\.skip\(|\.skipif\b|importorskip|mark\.skip\b|mark\.xfail\b")


def test_skip_or_fail_skips_on_a_developer_machine(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no podman"):
        skip_or_fail("no podman")


def test_skip_or_fail_fails_where_ci_is_set(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run on this CI machine: no podman"):
        skip_or_fail("no podman")


def test_no_test_skips_itself_directly():
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in sorted((REPO_ROOT / "tests").rglob("*.py"))
        if path.name != "helpers.py" and path != REPO_ROOT / "tests/unit/test_no_silent_skips.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if DIRECT_SKIPS.search(line)
    ]
    assert offenders == [], "skip through tests.helpers.skip_or_fail (fails where CI is set)"

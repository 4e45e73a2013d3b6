"""Thread pools from the cgroup CPU quota (pure functions; no TensorFlow needed)."""

from __future__ import annotations

from app.train.threads import cgroup_cpu_limit, threads_for


def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5


def test_cgroup_v2_unlimited(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota_and_unlimited(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    assert cgroup_cpu_limit(tmp_path) == 0.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_no_cgroup_files(tmp_path):
    assert cgroup_cpu_limit(tmp_path) is None


def test_threads_for_rounds_up_and_caps_at_cores():
    assert threads_for(None, 16) is None
    assert threads_for(0.5, 16) == 1
    assert threads_for(1.5, 16) == 2
    assert threads_for(8.0, 2) == 2

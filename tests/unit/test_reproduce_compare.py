"""`invoke reproduce`'s verdict: one line per difference, none when the re-run is identical."""

from __future__ import annotations

import copy

from app.launch.comparison import compare

RECORD = {
    "weights_sha256": "a" * 64,
    "data": {"fingerprint": "f1"},
    "environment": {"packages_sha256": "p1", "lock_sha256": "l1", "python": "3.11.2"},
    "metrics": {"test_accuracy": 0.975, "test_loss": 0.08},
    "config": {"seed": 42, "training": {"epochs": 3, "optimizer": "adam"}},
    "run_id": "20261125-180512-3fa9c2",
    "git": {"commit": "c1"},
}


def test_an_identical_rerun_has_no_differences():
    rerun = copy.deepcopy(RECORD)
    rerun["run_id"] = "20261126-090000-000000"  # ids, times and the like are not compared
    assert compare(RECORD, rerun) == []


def test_each_difference_is_one_line_naming_what_changed():
    rerun = copy.deepcopy(RECORD)
    rerun["weights_sha256"] = "b" * 64
    rerun["data"]["fingerprint"] = "f2"
    rerun["metrics"]["test_accuracy"] = 0.95
    rerun["config"]["training"]["epochs"] = 4
    del rerun["environment"]["lock_sha256"]
    assert compare(RECORD, rerun) == [
        f"weights_sha256: {'a' * 64} -> {'b' * 64}",
        "data fingerprint: f1 -> f2",
        "lock_sha256: l1 -> None",
        "metrics.test_accuracy: 0.975 -> 0.95 (delta -0.025)",
        "config training.epochs: 3 -> 4",
    ]


def test_a_metric_or_key_on_one_side_only_is_a_difference():
    rerun = copy.deepcopy(RECORD)
    rerun["metrics"]["extra"] = "x"
    rerun["config"]["model"] = {"dense_units": 16}
    assert compare(RECORD, rerun) == ["metrics.extra: None -> x", "config model.dense_units: None -> 16"]


NUMERICS = {
    "mode": True,
    "cpu_model": "AMD EPYC",
    "onednn_isa": "AVX512_CORE_BF16",
    "intra_op_threads": 2,
    "tensorflow": "2.21.0",
    "gpu": None,
}


def test_other_weights_come_with_the_recorded_numerics_that_differ():
    recorded = {**copy.deepcopy(RECORD), "numerics": NUMERICS}
    rerun = copy.deepcopy(recorded)
    rerun["weights_sha256"] = "b" * 64
    rerun["numerics"] = {**NUMERICS, "onednn_isa": "AVX2", "intra_op_threads": 1}
    assert compare(recorded, rerun) == [
        f"weights_sha256: {'a' * 64} -> {'b' * 64}",
        "numerics.onednn_isa: AVX512_CORE_BF16 -> AVX2",
        "numerics.intra_op_threads: 2 -> 1",
    ]


def test_other_numerics_with_the_same_weights_are_no_difference():
    # a portable run on another CPU model: the point of portable is that this is identical
    recorded = {**copy.deepcopy(RECORD), "numerics": {**NUMERICS, "mode": "portable"}}
    rerun = copy.deepcopy(recorded)
    rerun["numerics"]["cpu_model"] = "Intel Xeon"
    assert compare(recorded, rerun) == []


def test_another_model_file_or_weights_file_is_a_difference():
    with_model = {
        **RECORD,
        "model": {"code": {"file": "models/net.py", "sha256": "c1"}, "weights": {"sha256": "w1"}},
    }
    rerun = copy.deepcopy(with_model)
    rerun["model"]["code"]["sha256"] = "c2"
    rerun["model"]["weights"]["sha256"] = "w2"
    assert compare(with_model, rerun) == [
        "model file sha256: c1 -> c2",
        "pretrained weights sha256: w1 -> w2",
    ]

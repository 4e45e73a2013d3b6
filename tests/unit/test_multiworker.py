"""Pure pieces of multi-worker training: cluster detection, slicing, TF_CONFIG per worker."""

from __future__ import annotations

import json

import pytest

from app.launch import cluster, containers, group
from app.train import distribute


def tf_config(index: int, workers: int = 2) -> str:
    return json.dumps(
        {
            "cluster": {"worker": [f"w{i}:2222" for i in range(workers)]},
            "task": {"type": "worker", "index": index},
        }
    )


def test_detect_from_tf_config_slurm_or_single():
    assert distribute.detect({"TF_CONFIG": tf_config(1)}) == distribute.Cluster(2, 1, "TF_CONFIG")
    slurm = {"SLURM_JOB_ID": "7", "SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "3"}
    assert distribute.detect(slurm) == distribute.Cluster(4, 3, "slurm")
    assert distribute.detect({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}).distributed is False
    assert distribute.detect({}) == distribute.Cluster(1, 0, "single")


PS_TASK = json.dumps({"cluster": {"worker": ["w0:2222"]}, "task": {"type": "ps", "index": 0}})


@pytest.mark.parametrize("raw", ["{", '{"cluster": {}}', tf_config(2), PS_TASK])
def test_detect_rejects_a_bad_tf_config(raw):
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.detect({"TF_CONFIG": raw})


def test_worker_slices_cover_the_global_batch_in_order():
    batch = list(range(13))
    slices = [distribute.worker_slice(batch, i, 3) for i in range(3)]
    assert [item for part in slices for item in part] == batch
    assert [len(s) for s in slices] == [4, 4, 5]


def test_steps_drop_only_a_last_batch_too_small_for_every_worker():
    assert distribute.global_batches_per_epoch(1295, 32, 2) == 21  # 20 x 64 + 15
    assert distribute.global_batches_per_epoch(129, 32, 2) == 2  # remainder 1 < 2 workers: dropped
    assert distribute.global_batches_per_epoch(1295, 32, 1) == 41


def test_every_worker_gets_its_own_tf_config_and_name():
    spec = containers.ContainerSpec(
        image="x",
        command=["python"],
        role="train",
        name="n",
        labels={"trainbox.run_id": "r1"},
        environment={"A": "1"},
    )
    specs = cluster.worker_specs(spec, "r1", 2)
    assert [s.name for s in specs] == ["trainbox-train-r1-w0", "trainbox-train-r1-w1"]
    for index, worker in enumerate(specs):
        config = json.loads(worker.environment["TF_CONFIG"])
        assert config["task"] == {"type": "worker", "index": index}
        # One network namespace for the run: every worker on loopback, each on its own port.
        assert config["cluster"]["worker"] == ["127.0.0.1:2222", "127.0.0.1:2223"]
        assert worker.environment["A"] == "1" and worker.labels["trainbox.run_id"] == "r1"


def test_the_group_shares_the_first_members_network_namespace():
    specs = cluster.worker_specs(containers.ContainerSpec(image="x", command=[], role="train"), "r1", 3)
    joined = group.in_shared_namespace([group.Member(spec, "") for spec in specs])
    first = "container:trainbox-train-r1-w0"
    assert [spec.network_mode for spec in joined] == ["none", first, first]
    kwargs = containers.run_kwargs(joined[1])
    assert kwargs["network_mode"] == first and "ports" not in kwargs and "hostname" not in kwargs

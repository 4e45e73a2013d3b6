"""How a sweep decides what each trial does now, its CPU share and the order of its results."""

from __future__ import annotations

from app import manifest
from app.launch import containers, sweep_results, sweeps
from app.launch.sweep_spec import parse_spec

SPEC = parse_spec({"grid": {"model.dropout_rate": [0.1, 0.2, 0.3, 0.4]}}, "sweep s.yaml")
STATE = {
    "sweep_id": "s1",
    "trials": [
        {
            "trial": n,
            "run_id": f"s1-trial0{n}",
            "params": {"model.dropout_rate": n / 10},
            "config": f"trial-0{n}.yaml",
        }
        for n in range(1, 5)
    ],
}


def _run(output_dir, number, status, accuracy=None):
    run_dir = output_dir / f"s1-trial0{number}"
    run_dir.mkdir()
    metrics = {} if accuracy is None else {"test_accuracy": accuracy}
    manifest.write_json_atomic(
        run_dir / "manifest.json", {"run_id": run_dir.name, "status": status, "metrics": metrics}
    )


def test_each_trial_gets_its_share_of_the_cpus():
    assert sweeps.cpus_per_trial(containers.Limits(), 1) is None  # as invoke train: unlimited
    assert sweeps.cpus_per_trial(containers.Limits(cpus=2.0), 2) == 1.0
    assert sweeps.cpus_per_trial(containers.Limits(cpus=1.0), 1) == 1.0


def test_completed_trials_are_skipped_others_resumed_and_unstarted_ones_started(tmp_path):
    _run(tmp_path, 1, "completed", 0.5)
    _run(tmp_path, 2, "interrupted")
    (tmp_path / "s1-trial03").mkdir()  # its container died before writing a manifest
    request = sweeps.SweepRequest(sweep_file="s.yaml", parallel=2, limits=containers.Limits(cpus=2.0))
    plans = [sweeps._trial_request(request, STATE, trial, tmp_path) for trial in STATE["trials"]]
    assert plans[0] is None
    assert (plans[1].resume, plans[1].config_file, plans[1].limits.cpus) == ("s1-trial02", None, 1.0)
    assert (plans[2].run_id, plans[2].sweep, plans[2].resume) == ("s1-trial03", ("s1", 3), None)
    assert plans[2].config_file.endswith("sweeps/s1/trial-03.yaml")
    assert not (tmp_path / "s1-trial03").exists()  # never began: started afresh under its id
    assert plans[3].run_id == "s1-trial04"


def test_results_are_sorted_by_the_metric_with_unfinished_trials_last(tmp_path):
    _run(tmp_path, 1, "completed", 0.5)
    _run(tmp_path, 2, "completed", 0.75)
    _run(tmp_path, 3, "failed", 0.9)  # a failed trial's partial metric does not rank it
    results = sweep_results.trial_results(STATE, SPEC, tmp_path)
    assert [(r["trial"], r["status"], r["test_accuracy"]) for r in results] == [
        (2, "completed", 0.75),
        (1, "completed", 0.5),
        (3, "failed", None),
        (4, "not started", None),
    ]
    lowest = parse_spec({"grid": {"seed": [1]}, "goal": "minimize"}, "s")
    assert [r["trial"] for r in sweep_results.trial_results(STATE, lowest, tmp_path)][:2] == [1, 2]


def test_resume_refuses_another_sweep_file_or_an_unknown_sweep_in_one_line(tmp_path):
    import pytest

    from app.launch.errors import UsageError

    folder = sweeps.sweep_dir(tmp_path, "s1")
    folder.mkdir(parents=True)
    manifest.write_json_atomic(
        folder / sweeps.STATE_NAME, {**STATE, "spec": SPEC.to_dict(), "cpus_per_trial": None}
    )
    other = parse_spec({"grid": {"model.dropout_rate": [0.5]}}, "other.yaml")
    request = sweeps.SweepRequest(sweep_file="other.yaml", resume="s1")
    with pytest.raises(UsageError, match=r"other\.yaml is not the file that sweep was started with"):
        sweeps._load(request, other, tmp_path, print)
    with pytest.raises(UsageError, match="--resume s2: no such sweep in"):
        sweeps._load(sweeps.SweepRequest(sweep_file="s.yaml", resume="s2"), SPEC, tmp_path, print)
    with pytest.raises(UsageError, match="drop --config/--set"):
        sweeps._load(
            sweeps.SweepRequest(sweep_file="s.yaml", resume="s1", overrides=("seed=1",)),
            SPEC,
            tmp_path,
            print,
        )
    assert (
        sweeps._load(sweeps.SweepRequest(sweep_file="s.yaml", resume="s1"), SPEC, tmp_path, print)["sweep_id"]
        == "s1"
    )

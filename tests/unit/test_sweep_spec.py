"""Sweep files: checked whole before anything starts, expanded the same way every time."""

from __future__ import annotations

import pytest

from app.config import Config, load_config
from app.launch.sweep_spec import SweepError, expand, load_spec, parse_spec, trial_configs

EXAMPLE = {
    "grid": {"model.dropout_rate": [0.1, 0.3], "model.conv_filters": [[8], [8, 16]]},
    "random": {
        "training.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]},
        "training.batch_size": {"uniform": [8, 64]},
        "training.optimizer": ["adam", "sgd"],
    },
    "trials": 3,
    "seed": 7,
    "metric": "test_loss",
    "goal": "minimize",
}


def test_grid_times_draws_in_order_and_the_same_every_time():
    spec = parse_spec(EXAMPLE, "sweep s.yaml")
    trials = expand(spec)
    assert len(trials) == 2 * 2 * 3
    assert [t["model.dropout_rate"] for t in trials[:6]] == [0.1] * 6
    assert [t["model.conv_filters"] for t in trials[:6]] == [[8]] * 3 + [[8, 16]] * 3
    assert all(1e-4 <= t["training.learning_rate"] <= 1e-2 for t in trials)
    assert all(
        isinstance(t["training.batch_size"], int) and 8 <= t["training.batch_size"] <= 64 for t in trials
    )
    assert {t["training.optimizer"] for t in trials} == {"adam", "sgd"}
    assert expand(parse_spec(EXAMPLE, "again")) == trials
    assert expand(parse_spec({**EXAMPLE, "seed": 8}, "other seed")) != trials


def test_each_trial_is_the_base_config_with_its_values(tmp_path):
    base = load_config(None, ["training.epochs=2"])
    spec = parse_spec({"grid": {"model.dropout_rate": [0.1, 0.3]}}, "sweep s.yaml")
    configs = trial_configs(spec, base, "sweep s.yaml")
    assert [params for params, _ in configs] == [{"model.dropout_rate": 0.1}, {"model.dropout_rate": 0.3}]
    assert [(c.model.dropout_rate, c.training.epochs) for _, c in configs] == [(0.1, 2), (0.3, 2)]
    assert (spec.metric, spec.goal, spec.trials) == ("test_accuracy", "maximize", 1)


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"grid": {"model.dropout_rate": [0.1]}, "trails": 3}, "unknown sweep key 'trails'"),
        ({"grid": {"model.dropout_rate": []}}, "grid.model.dropout_rate: the list of values is empty"),
        ({"grid": {"model.dropout_rate": 0.1}}, "grid.model.dropout_rate: give a list of values"),
        (
            {"random": {"training.learning_rate": {"log_uniform": [1e-2, 1e-4]}}},
            "is empty",
        ),
        ({"random": {"training.learning_rate": {"log_uniform": [0, 1]}}}, "must be above 0"),
        ({"random": {"training.learning_rate": {"uniform": [1]}}}, "give two numbers"),
        ({"random": {"training.learning_rate": {"normal": [0, 1]}}}, "unknown distribution 'normal'"),
        ({"random": {"model.dropout_rate": []}}, "random.model.dropout_rate: the list of values is empty"),
        ({"grid": {"model.dropout": [0.1]}}, "trial 1: unknown config key 'model.dropout'"),
        ({"grid": {"model.dropout_rate": [0.1, 2.0]}}, "trial 2: config key 'model.dropout_rate'"),
        ({"grid": {"a..b": [1]}}, "'a..b' is not a dotted config key"),
        ({"grid": {"seed": [1]}, "random": {"seed": [2]}}, "'seed' is in both grid and random"),
        ({"grid": {"seed": [1]}, "trials": 2}, "'trials' counts random draws"),
        ({"random": {"seed": [1]}, "trials": 0}, "'trials' must be a whole number of 1 or more"),
        ({"grid": {"seed": [1]}, "goal": "max"}, "'goal' must be maximize or minimize"),
        ({"metric": "test_accuracy"}, "nothing to sweep"),
        ([1, 2], "the top level must be a mapping"),
    ],
)
def test_a_wrong_sweep_is_one_line_naming_the_key(sweep, message):
    with pytest.raises(SweepError) as caught:
        trial_configs(parse_spec(sweep, "sweep s.yaml"), Config(), "sweep s.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("sweep s.yaml: ")
    assert "\n" not in str(caught.value)


def test_a_sweep_file_that_is_not_yaml_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("grid: [unclosed\n")
    with pytest.raises(SweepError, match="invalid YAML at line"):
        load_spec(path)
    with pytest.raises(SweepError, match="sweep file not found"):
        load_spec(tmp_path / "missing.yaml")

"""Learning-rate schedules, class weights, best epoch and early stopping: pure functions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from app.config import ConfigError, load_config
from app.train import control


def training(*overrides: str):
    return load_config(None, list(overrides)).training


def test_constant_schedule_keeps_the_rate():
    config = training("training.learning_rate=0.01")
    assert [control.learning_rate(config, epoch) for epoch in range(3)] == [0.01] * 3


def test_cosine_goes_from_the_rate_towards_lr_min_over_the_epochs():
    config = training(
        "training.lr_schedule=cosine",
        "training.learning_rate=0.1",
        "training.lr_min=0.02",
        "training.epochs=4",
    )
    rates = [control.learning_rate(config, epoch) for epoch in range(4)]
    assert rates[0] == pytest.approx(0.1)
    assert rates[2] == pytest.approx(0.06)  # half way: the middle of 0.1 and 0.02
    assert rates[3] == pytest.approx(0.02 + 0.08 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))
    assert all(a > b for a, b in itertools.pairwise(rates))


def test_step_multiplies_by_the_factor_every_n_epochs():
    config = training(
        "training.lr_schedule=step",
        "training.learning_rate=1.0",
        "training.lr_step_epochs=2",
        "training.lr_step_factor=0.5",
    )
    assert [control.learning_rate(config, epoch) for epoch in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_balanced_class_weights_as_scikit_learn_defines_them():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = control.balanced_class_weights(labels, 3)
    assert weights.dtype == np.float32
    assert weights.tolist() == pytest.approx([10 / 18, 10 / 9, 10 / 3])
    assert float(np.sum(weights[labels])) == pytest.approx(len(labels))  # the total loss weight is kept


def history(*val_losses):
    return [{"epoch": index + 1, "val_loss": loss} for index, loss in enumerate(val_losses)]


def test_best_epoch_is_the_lowest_validation_loss_the_earliest_of_equals():
    assert control.best_epoch(history(0.9, 0.5, 0.7, 0.5)) == 2
    assert control.best_epoch(history(float("nan"), 0.8)) == 2
    assert control.best_epoch([]) is None


def test_stops_after_patience_epochs_without_a_lower_validation_loss():
    assert not control.stops_early(history(0.9, 0.8, 0.85), 2)
    assert control.stops_early(history(0.9, 0.8, 0.85, 0.81), 2)
    assert not control.stops_early(history(0.9, 0.8, 0.85, 0.81), None)
    assert control.stops_early(history(float("nan"), float("nan")), 2)


def test_config_rejects_what_cannot_work():
    with pytest.raises(ConfigError, match="lr_min"):
        load_config(None, ["training.lr_schedule=cosine", "training.lr_min=0.5"])
    with pytest.raises(ConfigError, match="validation"):
        load_config(None, ["training.restore_best=true", "data.validation_split=0"])
    with pytest.raises(ConfigError, match="class_weight"):
        load_config(None, ["training.class_weight=inverse"])
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        load_config(None, ["training.early_stopping_patience=0"])

"""A sweep file: read, checked whole (before anything starts), expanded into trial configs.

```yaml
grid:                      # every combination, in the order written
  model.dropout_rate: [0.1, 0.3]
random:                    # `trials` draws per grid point, from a seeded generator
  training.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
  training.batch_size: [16, 32]          # a list: one of these
trials: 2
seed: 0
metric: test_accuracy
goal: maximize
```

Pure (no engine): the same file, base config and seed always give the same trials.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Config, ConfigError, apply_override, read_config_file, validate

KEYS = ("grid", "random", "trials", "seed", "metric", "goal")
DISTRIBUTIONS = ("log_uniform", "uniform")
GOALS = ("maximize", "minimize")


class SweepError(ConfigError):
    """The sweep file is wrong; one line naming the file and the key."""


@dataclass(frozen=True)
class SweepSpec:
    grid: dict[str, list]
    random: dict[str, Any]
    trials: int
    seed: int
    metric: str
    goal: str

    @property
    def swept_keys(self) -> list[str]:
        return [*self.grid, *self.random]

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": self.grid,
            "random": self.random,
            "trials": self.trials,
            "seed": self.seed,
            "metric": self.metric,
            "goal": self.goal,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_key(key: Any, where: str) -> str:
    parts = str(key).split(".")
    if not isinstance(key, str) or any(not part or not part.replace("_", "").isalnum() for part in parts):
        raise SweepError(f"{where}: {key!r} is not a dotted config key like training.learning_rate")
    return key


def _check_choices(values: Any, where: str) -> list:
    if not isinstance(values, list):
        raise SweepError(f"{where}: give a list of values, e.g. [0.1, 0.3]")
    if not values:
        raise SweepError(f"{where}: the list of values is empty")
    return values


def _check_distribution(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return _check_choices(value, where)
    if not isinstance(value, dict) or len(value) != 1:
        raise SweepError(
            f"{where}: give a list of values or one of {{log_uniform: [a, b]}}, {{uniform: [a, b]}}"
        )
    ((kind, bounds),) = value.items()
    if kind not in DISTRIBUTIONS:
        raise SweepError(f"{where}: unknown distribution '{kind}' (known: {', '.join(DISTRIBUTIONS)})")
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(_is_number(b) for b in bounds):
        raise SweepError(f"{where}.{kind}: give two numbers [low, high], e.g. [1.0e-4, 1.0e-2]")
    low, high = bounds
    if not low < high:
        raise SweepError(f"{where}.{kind}: the range [{low}, {high}] is empty: low must be below high")
    if kind == "log_uniform" and low <= 0:
        raise SweepError(f"{where}.log_uniform: the range [{low}, {high}] must be above 0")
    return value


def _section(data: dict, name: str, check, source: str) -> dict:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise SweepError(f"{source}: '{name}' must be a mapping of config keys to values")
    return {
        _check_key(key, f"{source}: {name}"): check(value, f"{source}: {name}.{key}")
        for key, value in section.items()
    }


def _whole_number(data: dict, name: str, default: int, least: int, source: str) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise SweepError(f"{source}: '{name}' must be a whole number of {least} or more (got {value!r})")
    return value


def parse_spec(data: Any, source: str) -> SweepSpec:
    if not isinstance(data, dict):
        raise SweepError(f"{source}: the top level must be a mapping with grid and/or random")
    unknown = [key for key in data if key not in KEYS]
    if unknown:
        raise SweepError(f"{source}: unknown sweep key '{unknown[0]}' (known: {', '.join(KEYS)})")
    grid = _section(data, "grid", _check_choices, source)
    drawn = _section(data, "random", _check_distribution, source)
    if not grid and not drawn:
        raise SweepError(f"{source}: nothing to sweep: give a 'grid' and/or a 'random' section")
    both = sorted(set(grid) & set(drawn))
    if both:
        raise SweepError(f"{source}: '{both[0]}' is in both grid and random: keep it in one")
    if "trials" in data and not drawn:
        raise SweepError(f"{source}: 'trials' counts random draws: add a 'random' section or drop it")
    goal = data.get("goal", "maximize")
    if goal not in GOALS:
        raise SweepError(f"{source}: 'goal' must be maximize or minimize (got {goal!r})")
    metric = data.get("metric", "test_accuracy")
    if not isinstance(metric, str) or not metric:
        raise SweepError(f"{source}: 'metric' must be a metric name such as test_accuracy")
    return SweepSpec(
        grid=grid,
        random=drawn,
        trials=_whole_number(data, "trials", 1, 1, source),
        seed=_whole_number(data, "seed", 0, 0, source),
        metric=metric,
        goal=goal,
    )


def load_spec(path: str | Path) -> SweepSpec:
    try:
        data = read_config_file(path)
    except ConfigError as error:
        raise SweepError(str(error).replace("config file", "sweep file")) from None
    return parse_spec(data, f"sweep {path}")


def _draw(rng: random.Random, distribution: Any) -> Any:
    if isinstance(distribution, list):
        return rng.choice(distribution)
    ((kind, (low, high)),) = distribution.items()
    whole = isinstance(low, int) and isinstance(high, int)
    if kind == "uniform":
        return rng.randint(low, high) if whole else float(f"{rng.uniform(low, high):.6g}")
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    return round(value) if whole else float(f"{value:.6g}")  # 6 digits: readable configs, same draws


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Each trial's swept values, in order: grid combinations x `trials` seeded random draws."""
    rng = random.Random(spec.seed)
    points = [dict(zip(spec.grid, values, strict=True)) for values in itertools.product(*spec.grid.values())]
    return [
        {**point, **{key: _draw(rng, distribution) for key, distribution in spec.random.items()}}
        for point in points
        for _ in range(spec.trials if spec.random else 1)
    ]


def trial_config(base: Config, params: dict[str, Any], source: str, number: int) -> Config:
    """The base config with one trial's values; a key or value the config refuses is one line."""
    tree = base.to_dict()
    try:
        for key, value in params.items():
            apply_override(tree, key.split("."), value)
        return validate(tree)
    except ConfigError as error:
        raise SweepError(f"{source}: trial {number}: {str(error).removeprefix('--set ')}") from None


def trial_configs(spec: SweepSpec, base: Config, source: str) -> list[tuple[dict[str, Any], Config]]:
    """Every trial's values and validated config: all checked before the first one starts."""
    return [
        (params, trial_config(base, params, source, number))
        for number, params in enumerate(expand(spec), start=1)
    ]

"""One benchmark figure: its samples, the goal it is held to, and the baseline it is
compared with, measured in the same run."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Goal:
    """A target with its direction: give exactly one of `at_least` or `at_most`."""

    at_least: float | None = None
    at_most: float | None = None

    def __post_init__(self) -> None:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("a goal needs exactly one of at_least or at_most")

    def met_by(self, value: float) -> bool:
        return value >= self.at_least if self.at_least is not None else value <= self.at_most

    def __str__(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"<= {self.at_most:g}"


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """What a figure is compared with, and that comparison's own samples from this run."""

    label: str
    samples: tuple[float, ...]

    @property
    def value(self) -> float:
        return statistics.median(self.samples)


@dataclass(frozen=True, kw_only=True)
class Figure:
    """Samples of one quantity; the value is their median, the spread their min and max.

    A paired figure has one baseline sample per sample: each pair measured back to back,
    the order alternating (see bench.pairing.alternating).
    """

    name: str
    unit: str
    definition: str  # what it measures, and how
    samples: tuple[float, ...] = ()
    goal: Goal | None = None
    baseline: Baseline | None = None
    reason: str | None = None  # why there are no samples

    def __post_init__(self) -> None:
        if not self.samples and not self.reason:
            raise ValueError(f"{self.name}: a figure without samples must say why")
        if not all(isinstance(s, (int, float)) and math.isfinite(s) for s in self.samples):
            raise ValueError(f"{self.name}: a sample is not a finite number: {self.samples}")

    @property
    def value(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def spread(self) -> tuple[float, float] | None:
        return (min(self.samples), max(self.samples)) if self.samples else None

    @property
    def meets_goal(self) -> bool | None:
        if self.goal is None or self.value is None:
            return None
        return self.goal.met_by(self.value)

    def record(self) -> dict:
        """The figure as results.json holds it under `figures`."""
        return {
            "value": self.value,
            "unit": self.unit,
            "goal": str(self.goal) if self.goal else None,
            "meets_goal": self.meets_goal,
            "baseline": self.baseline.value if self.baseline else None,
            "baseline_label": self.baseline.label if self.baseline else "",
            "baseline_samples": list(self.baseline.samples) if self.baseline else [],
            "spread": list(self.spread) if self.spread else None,
            "samples": list(self.samples),
            "definition": self.definition,
            **({"reason": self.reason} if self.reason else {}),
        }


def paired_ratios(measured: list[float], baseline: list[float]) -> tuple[float, ...]:
    """measured[i] / baseline[i]: one ratio per back-to-back pair."""
    return tuple(m / b for m, b in zip(measured, baseline, strict=True))

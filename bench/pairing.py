"""The paired design every comparison uses. Pure: imported on the host and in the image."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def alternating(reps: int, sides: dict[str, Callable[[], T]]) -> list[dict[str, T]]:
    """Run every side once per repetition, back to back, reversing the order every other
    repetition so a slow drift of the machine's load favours no side. One {side: result}
    per repetition, in the order the sides ran."""
    names = list(sides)
    rounds = []
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        rounds.append({name: sides[name]() for name in order})
    return rounds

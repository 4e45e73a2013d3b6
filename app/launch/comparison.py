"""Two run manifests side by side: the one comparison `invoke reproduce` and
`invoke runs --compare` share. Pure: plain dicts in, rows and lines out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import numerics
from app.config import flatten

# What must be equal for a re-run to count as identical: (label, path in the manifest).
COMPARED = (
    ("weights_sha256", ("weights_sha256",)),
    ("data fingerprint", ("data", "fingerprint")),
    ("packages_sha256", ("environment", "packages_sha256")),
    ("lock_sha256", ("environment", "lock_sha256")),
    ("model file sha256", ("model", "code", "sha256")),
    ("pretrained weights sha256", ("model", "weights", "sha256")),
)
# Where a run came from: shown side by side, not part of a re-run's verdict (a re-run may use
# an image rebuilt from the same commit and lock).
PROVENANCE = (
    ("image id", ("image", "id")),
    ("image tag", ("image", "tag")),
    ("git commit", ("git", "commit")),
    ("git dirty", ("git", "dirty")),
    ("tensorflow", ("environment", "tensorflow")),
    ("epochs_completed", ("epochs_completed",)),
    ("status", ("status",)),
)


# Two runs' results are comparable when these are the same.
SAME_FOR_COMPARABLE = (
    ("data", ("data", "fingerprint")),
    ("image", ("image", "id")),
    ("code", ("git", "commit")),
)


@dataclass(frozen=True)
class Row:
    label: str
    before: Any
    after: Any
    outcome: bool  # part of what a re-run must reproduce

    @property
    def same(self) -> bool:
        return self.before == self.after


def get(record: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def _keyed(old: dict, new: dict, prefix: str, outcome: bool) -> list[Row]:
    return [Row(f"{prefix}{key}", old.get(key), new.get(key), outcome) for key in sorted(set(old) | set(new))]


def rows(old: dict, new: dict) -> list[Row]:
    """Every compared fact of two manifests, in the order they are shown."""
    found = [Row(label, get(old, path), get(new, path), True) for label, path in COMPARED]
    found += _keyed(old.get("metrics") or {}, new.get("metrics") or {}, "metrics.", True)
    found += _keyed(flatten(old.get("config") or {}), flatten(new.get("config") or {}), "config ", True)
    found += [Row(label, get(old, path), get(new, path), False) for label, path in PROVENANCE]
    numerics = (flatten(old.get("numerics") or {}), flatten(new.get("numerics") or {}))
    found += _keyed(*numerics, "numerics ", False) if any(numerics) else []
    return found


def _line(row: Row) -> str:
    before, after = row.before, row.after
    numbers = isinstance(before, (int, float)) and isinstance(after, (int, float))
    if row.label.startswith("metrics.") and numbers:
        return f"{row.label}: {before:.6g} -> {after:.6g} (delta {after - before:+.3g})"
    return f"{row.label}: {before} -> {after}"


def compare(old: dict, new: dict) -> list[str]:
    """One line per difference in what a re-run must reproduce; empty when identical.
    Other weights come with the recorded numerics that differ, which say why."""
    lines = [_line(row) for row in rows(old, new) if row.outcome and not row.same]
    if old.get("weights_sha256") != new.get("weights_sha256"):
        lines += numerics.differences(old.get("numerics"), new.get("numerics"))
    return lines


def comparability(old: dict, new: dict) -> list[str]:
    """Why two runs' results cannot be compared fairly (different data, image or code); empty if they can."""
    reasons = []
    for what, path in SAME_FOR_COMPARABLE:
        before, after = get(old, path), get(new, path)
        if before is None or before != after:
            reasons.append(f"different {what}" if before and after else f"{what} unknown")
    if "different code" not in reasons and (get(old, ("git", "dirty")) or get(new, ("git", "dirty"))):
        reasons.append("uncommitted changes (code not comparable)")
    return reasons

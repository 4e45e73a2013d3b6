"""An image's layers, each with the Dockerfile step that made it (pure: no docker import).

The engine lists an image's layer digests (`RootFS.Layers`, oldest first: the digests of the
uncompressed layer tars) and, separately, its history (`docker history`, newest first), which
holds every step, including those that made no layer (ENV, LABEL, ...). The API does not say
which history entries made a layer; this pairs them when the answer is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STEP_WIDTH = 100  # a step's text in the manifest is cut here: RUN lines can be paragraphs
# "|3 VARIANT=cpu LOCK_SHA256=... SOURCE_DATE_EPOCH=... " before a RUN's shell: its build args
_BUILD_ARGS = re.compile(r"^\|\d+ (\S+=\S* )*")
_SHELL = "/bin/sh -c "
_NOP = "#(nop) "
# Steps that write files: a RUN, COPY or ADD, or the import of a root file system.
_WRITES = ("RUN ", "COPY ", "ADD ", "import")


@dataclass(frozen=True)
class Layer:
    digest: str  # sha256:... of the uncompressed layer tar (the image config's diff_id)
    step: str | None = None  # the Dockerfile step that made it, as history says it; None: unknown


def step_text(created_by: str, comment: str = "") -> str:
    """A history entry's CreatedBy as the Dockerfile step: `RUN apt-get ...`, `COPY dir:... in /`,
    `import` for an imported root file system; cut to STEP_WIDTH characters."""
    text = _BUILD_ARGS.sub("", created_by.strip())
    if text.startswith(_SHELL + _NOP):
        text = text[len(_SHELL + _NOP) :]
    elif text.startswith(_SHELL):
        text = "RUN " + text[len(_SHELL) :]
    elif not text:
        text = "import" + (f" ({comment.strip()})" if comment.strip() else "")
    text = " ".join(text.split())
    return text if len(text) <= STEP_WIDTH else text[: STEP_WIDTH - 3] + "..."


def _writes(step: str) -> bool:
    return step.startswith(_WRITES)


def paired(digests: Sequence[str], history: Sequence[Mapping]) -> list[Layer]:
    """The layers, oldest first, each with its step when history tells it unambiguously.

    `history` is the engine's (newest first: `image.history()`). A step that wrote bytes
    (Size > 0) made a layer; one that wrote none made a layer only if it changed the file
    system at all (a RUN that made a folder), which history does not say. So: the steps
    with bytes, and if they are too few, those plus the steps that write files; if neither
    count matches the digests, the steps stay unknown rather than guessed.
    """
    entries = [
        (step_text(entry.get("CreatedBy") or "", entry.get("Comment") or ""), entry.get("Size") or 0)
        for entry in reversed(history)  # oldest first, as the digests
    ]
    with_bytes = [step for step, size in entries if size > 0]
    writing = [step for step, size in entries if size > 0 or _writes(step)]
    for steps in (with_bytes, writing):
        if len(steps) == len(digests):
            return [Layer(digest, step) for digest, step in zip(digests, steps, strict=True)]
    return [Layer(digest) for digest in digests]

"""The run's numerics before TensorFlow loads, as `python -m app train` sets them: a
workload imports this first, so `--set deterministic=portable` means what it means there."""

from __future__ import annotations

import argparse
import sys

from app.config import Config, load_config
from app.train import numerics


def prepare(argv: list[str] | None = None) -> Config:
    """The workload's config (from its --config/--set), its numerics variables set."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--config")
    peek.add_argument("--set", action="append", default=[])
    known, _ = peek.parse_known_args(sys.argv[1:] if argv is None else argv)
    config = load_config(known.config, known.set)
    numerics.prepare(config)
    return config

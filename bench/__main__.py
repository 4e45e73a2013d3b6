"""`python -m bench [--quick] [--only NAME ...]`: the same as `invoke bench`."""

import argparse
import sys
from pathlib import Path

from app.launch.errors import TrainboxError
from bench.suite import RESULTS, run

parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
parser.add_argument("--quick", action="store_true", help="fewer repetitions, no GPU image build (CI)")
parser.add_argument("--only", action="append", default=[], help="one step or figure (repeatable)")
parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON results")
parser.add_argument("--no-gpu-build", action="store_true", help="never build the GPU image to weigh it")
args = parser.parse_args()
try:
    sys.exit(
        run(quick=args.quick, only=args.only, results_path=args.results, build_gpu=not args.no_gpu_build)
    )
except TrainboxError as error:
    print(f"trainbox: {error}", file=sys.stderr)
    sys.exit(error.exit_code)

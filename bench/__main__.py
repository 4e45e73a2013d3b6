"""`python -m bench [--quick]`: the same as `invoke bench [--quick]`."""

import argparse
import sys

from bench.suite import run

parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI)")
sys.exit(run(quick=parser.parse_args().quick))

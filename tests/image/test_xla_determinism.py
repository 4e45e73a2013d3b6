"""`training.jit_compile` takes effect only without op determinism: Keras compiles the
training step without XLA while it is on (README, BENCHMARKS.md). In a fresh process,
because op determinism cannot be switched off once it is on."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.image

SCRIPT = """
import json
from app.config import load_config
from app.train.model import build_model, compile_model
from app.train.determinism import set_determinism

def jit(deterministic):
    config = load_config(None, ["training.jit_compile=true", f"deterministic={deterministic}"])
    set_determinism(config.seed, config.deterministic)
    model = build_model(config.model, (8, 8, 1), 10, config.training.precision)
    compile_model(model, config.training)
    return model.jit_compile

print(json.dumps({"without": jit("false"), "with": jit("true")}))
"""


def test_jit_compile_is_dropped_while_op_determinism_is_on():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"without": True, "with": False}

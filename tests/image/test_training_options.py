"""XLA and mixed precision: each run completes with the policy it asked for, and resumes."""

from pathlib import Path

import pytest
from image_helpers import TINY, read_manifest, run_app, train_args

pytestmark = pytest.mark.image

OPTIONS = [
    "training.jit_compile=true",
    "training.precision=mixed_bfloat16",
    "training.epochs=2",
    "training.batch_size=32",
]


def test_xla_and_mixed_bfloat16_run_completes(digits_dir: Path, tmp_path: Path):
    import keras

    overrides = [*TINY, *OPTIONS]
    result = run_app(*train_args(digits_dir, tmp_path, "options", overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "options"
    record = read_manifest(run_dir)
    assert record["status"] == "completed"
    assert record["config"]["training"]["jit_compile"] is True
    assert record["config"]["training"]["precision"] == "mixed_bfloat16"
    assert record["metrics"]["test_accuracy"] > 0.1  # learnt something: better than chance

    model = keras.models.load_model(run_dir / "model.keras")
    assert model.get_layer("dense").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("dense").compute_dtype == "bfloat16"
    assert model.get_layer("classes").compute_dtype == "float32"


def test_mixed_float16_compiles_with_loss_scaling():
    import keras

    from app.config import load_config
    from app.train.model import build_model, compile_model

    config = load_config(None, ["training.precision=mixed_float16"])
    try:
        model = build_model(config.model, (8, 8, 1), 10, config.training.precision)
        compile_model(model, config.training)
        assert model.get_layer("conv0").compute_dtype == "float16"
        assert model.get_layer("classes").compute_dtype == "float32"
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")

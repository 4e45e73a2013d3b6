"""Looking at a finished run from a notebook: find it, load it, plot it, predict with it.

Everything reads what the training wrote (manifest.json, config.yaml, history.json,
model.keras) and reuses the training's own loaders, so a notebook holds no copied code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app import manifest
from app.config import Config, load_config
from app.manifest import Status
from app.train.plots import learning_curves_figure, run_title


@dataclass
class FinishedRun:
    run_dir: Path
    record: dict
    config: Config
    history: list[dict]

    @property
    def run_id(self) -> str:
        return self.record["run_id"]

    @property
    def title(self) -> str:
        """What the run's figures say above them: run id, test accuracy, changed config keys."""
        return run_title(self.run_id, self.record.get("metrics"), self.config.to_dict())

    def load_model(self):
        import keras

        return keras.models.load_model(self.run_dir / "model.keras", compile=False)


def default_dir(mount: str, local: str) -> Path:
    """The mount point inside the image (/data, /outputs), else the local folder."""
    return Path(mount) if Path(mount).is_dir() else Path(local)


def list_runs(output_dir: str | Path, status: Status | None = Status.COMPLETED) -> list[Path]:
    """Run directories under output_dir (oldest first), only those with `status` unless None."""
    return [run_dir for run_dir, _ in _runs(output_dir, status)]


def latest_run(output_dir: str | Path) -> Path:
    """The completed run whose manifest was written last."""
    runs = _runs(output_dir, Status.COMPLETED)
    if not runs:
        raise FileNotFoundError(f"no completed run in {output_dir}: train one with `invoke train`")
    return max(runs, key=lambda found: found[1].updated_at or "")[0]


def _runs(output_dir: str | Path, status: Status | None) -> list[tuple[Path, manifest.RunRecord]]:
    output_dir = Path(output_dir)
    found = []
    for child in sorted(output_dir.iterdir()) if output_dir.is_dir() else []:
        try:
            record = manifest.read_record(child) if child.is_dir() else None
        except ValueError:
            continue  # not a run directory, or a torn manifest
        if record is not None and (status is None or record.status == status):
            found.append((child, record))
    return found


def load_run(run_dir: str | Path) -> FinishedRun:
    run_dir = Path(run_dir)
    record = manifest.read_manifest(run_dir)
    if record is None:
        raise FileNotFoundError(f"{run_dir} has no {manifest.MANIFEST_NAME}: not a run directory")
    history = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    return FinishedRun(run_dir, record, load_config(run_dir / "config.yaml"), history)


def plot_learning_curves(history: list[dict], title: str | None = None):
    """Loss and accuracy per epoch, train and validation, as a matplotlib Figure (`run.title`)."""
    return learning_curves_figure(history, title)


@dataclass
class Predictions:
    images: SplitImages  # the split's images, read from the decoded-image cache on demand
    labels: np.ndarray  # true class index
    predicted: np.ndarray  # predicted class index
    class_names: list[str]

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.labels == self.predicted)) if len(self.labels) else float("nan")


class SplitImages:
    """A split's images by position (`images[i]`, `len(images)`), without loading them all."""

    def __init__(self, split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, position: int) -> np.ndarray:
        return self.split.take([position])[0][0]


def predict_test_set(
    run: FinishedRun, data_dir: str | Path, model=None, cache_dir: str | Path | None = None
) -> Predictions:
    """The run's model on its test split, read exactly as the training read it.

    The images come from the decoded-image cache the training used (by default the one in
    the run's output directory), so nothing is decoded again.
    """
    from app import settings
    from app.train.data import eval_pipeline, load_dataset
    from app.train.files import plan_dataset

    plan = plan_dataset(Path(data_dir), run.config.data, run.config.seed)
    cache_dir = Path(cache_dir) if cache_dir else settings.default_cache_dir(run.run_dir.parent)
    dataset = load_dataset(plan, run.config.data, cache_dir)
    split = dataset.test if dataset.test is not None else dataset.validation
    if split is None:
        raise ValueError("the run's config has neither data.test nor a validation split to show")
    model = model or run.load_model()
    probabilities = model.predict(eval_pipeline(split, 256), verbose=0)
    return Predictions(SplitImages(split), split.labels, probabilities.argmax(axis=1), dataset.class_names)


def plot_prediction_grid(predictions: Predictions, rows: int = 4, columns: int = 8, seed: int = 0):
    """A grid of test images titled 'predicted (true)'; wrong predictions in red."""
    import matplotlib.pyplot as plt

    count = min(rows * columns, len(predictions.labels))
    chosen = np.sort(np.random.default_rng(seed).choice(len(predictions.labels), count, replace=False))
    figure, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.6 * rows))
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, index in zip(np.ravel(axes), chosen, strict=False):
        image = predictions.images[index]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        predicted = predictions.class_names[predictions.predicted[index]]
        true = predictions.class_names[predictions.labels[index]]
        axis.set_title(f"{predicted} ({true})", fontsize=9, color="black" if predicted == true else "red")
    figure.tight_layout()
    return figure

"""The one config schema and loader, used on the host and in the container.

defaults -> YAML file -> ``--set dotted.key=value`` overrides -> validate -> frozen.
Every failure is a ``ConfigError`` whose message is one line naming the key.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app import architectures

MAX_CONFIG_BYTES = 1_000_000


class ConfigError(ValueError):
    """A config the user wrote is wrong; the message says what and where, in one line.

    User text quoted in a message (a YAML key, a --set argument) may hold newlines or other
    control characters: they are shown escaped, so the message is always one line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message) or "invalid config")


def one_line(text: str) -> str:
    """Text as one line: control characters (newline, tab, ...) escaped as Python writes them."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(text).strip())


class _Section(BaseModel):
    # strict: YAML already gives typed scalars, so "3" for an int is a mistake, not a
    # value to coerce; extra=forbid: a typo in a key is an error naming the key.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_relative(path: str | None) -> str | None:
    if path is None:
        return None
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise ValueError(f"'{path}' must be a path relative to the data directory")
    normalized = posixpath.normpath(path)
    if normalized == ".." or normalized.startswith("../"):
        raise ValueError(f"'{path}' escapes the data directory")
    return normalized


class DataConfig(_Section):
    train: str = "digits/train"
    validation: str | None = None
    validation_split: float = Field(default=0.1, ge=0.0, lt=1.0)
    test: str | None = "digits/test"
    image_size: list[int] = Field(default=[16, 16], min_length=2, max_length=2)
    color_mode: Literal["grayscale", "rgb"] = "grayscale"
    # To image_size: stretch (ignore the aspect), crop (centre crop to the aspect, then
    # resize) or pad (letterbox: the whole photo, black bars).
    resize: Literal["stretch", "crop", "pad"] = "stretch"
    # A file that is not an image: an error naming it (false), or skipped and listed in
    # the manifest under data.skipped (true).
    skip_unreadable: bool = False

    _relative = field_validator("train", "validation", "test")(_check_relative)

    @field_validator("image_size")
    @classmethod
    def _size_in_range(cls, size: list[int]) -> list[int]:
        if any(side < 4 or side > 1024 for side in size):
            raise ValueError("each side must be between 4 and 1024 pixels")
        return size


class ModelConfig(_Section):
    # small_cnn (conv_filters, dense_units below), a Keras Applications backbone as Keras
    # spells it (ResNet50, ...), or models/<name>.py defining build_model(...).
    architecture: str = architectures.SMALL_CNN
    # none, imagenet (Keras' download, cached once per machine) or a .h5 weights file
    # relative to the data directory; for backbones only.
    weights: str = architectures.NO_WEIGHTS
    conv_filters: list[int] = Field(default=[32, 64], min_length=1, max_length=6)
    dense_units: int = Field(default=128, ge=1, le=8192)
    dropout_rate: float = Field(default=0.25, ge=0.0, lt=1.0)
    augmentation: bool = False

    @field_validator("conv_filters")
    @classmethod
    def _filters_in_range(cls, filters: list[int]) -> list[int]:
        if any(width < 1 or width > 1024 for width in filters):
            raise ValueError("each width must be between 1 and 1024")
        return filters

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, architecture: str) -> str:
        return architectures.check_architecture(architecture)

    @field_validator("weights")
    @classmethod
    def _weights_source(cls, weights: str) -> str:
        weights = architectures.check_weights(weights)
        if weights in (architectures.NO_WEIGHTS, architectures.IMAGENET):
            return weights
        return _check_relative(weights)

    @model_validator(mode="after")
    def _weights_need_a_backbone(self) -> ModelConfig:
        if self.weights != architectures.NO_WEIGHTS and not architectures.is_backbone(self.architecture):
            raise ValueError(
                f"model.weights {self.weights!r} needs a Keras Applications backbone as "
                f"model.architecture (not {self.architecture}); a models/ file loads its own weights"
            )
        return self


class TrainingConfig(_Section):
    epochs: int = Field(default=12, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    learning_rate: float = Field(default=0.002, gt=0.0, le=10.0)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    # XLA for the training step: "auto" is Keras' choice (on with a GPU, off on CPU).
    jit_compile: bool | Literal["auto"] = "auto"
    # Keras dtype policy: mixed_float16 pays off on NVIDIA tensor cores, mixed_bfloat16 on
    # CPUs/GPUs with bf16 units; the output layer always computes in float32.
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    # Backbones: train only the new head (backbone frozen, its BatchNorm in inference mode)
    # for this many epochs, then the whole network at fine_tune_learning_rate
    # (null: learning_rate / 10). 0: the whole network from the start.
    freeze_backbone_epochs: int = Field(default=0, ge=0, le=10_000)
    fine_tune_learning_rate: float | None = Field(default=None, gt=0.0, le=10.0)
    # Stop after this many epochs without a lower validation loss (null: never stop early).
    early_stopping_patience: int | None = Field(default=None, ge=1, le=10_000)
    # Keep the weights of the epoch with the lowest validation loss, not the last epoch's.
    restore_best: bool = False
    # "balanced": weigh each class's loss by n_images / (n_classes * n_images_of_class).
    class_weight: Literal["balanced"] | None = None
    # The learning rate per epoch: constant; cosine from learning_rate down to lr_min over
    # the epochs; step: times lr_step_factor every lr_step_epochs epochs.
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    lr_min: float = Field(default=0.0, ge=0.0, le=10.0)
    lr_step_epochs: int = Field(default=10, ge=1, le=10_000)
    lr_step_factor: float = Field(default=0.1, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _lr_min_below_rate(self) -> TrainingConfig:
        if self.lr_schedule == "cosine" and self.lr_min >= self.learning_rate:
            raise ValueError(
                f"lr_min ({self.lr_min}) must be below learning_rate ({self.learning_rate}) for cosine"
            )
        return self

    @property
    def unfrozen_learning_rate(self) -> float:
        return self.fine_tune_learning_rate or self.learning_rate / 10


class Config(_Section):
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    # true: the same weights on the same machine; portable: also on other CPUs and core
    # counts (oneDNN pinned to its lowest ISA, fixed thread pools, no XLA; see README).
    deterministic: bool | Literal["portable"] = True
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()

    @field_validator("deterministic", mode="plain")
    @classmethod
    def _determinism_mode(cls, value: Any) -> bool | str:
        if value is True or value is False or value == "portable":
            return value
        raise ValueError("must be true, false or portable")

    @model_validator(mode="after")
    def _portable_without_xla(self) -> Config:
        if self.deterministic == "portable" and self.training.jit_compile is True:
            # XLA compiles for the CPU it runs on: its code (and rounding) follows that CPU's ISA
            raise ValueError("training.jit_compile: true cannot be portable: use false or auto")
        return self

    @model_validator(mode="after")
    def _validation_for_best_epoch(self) -> Config:
        training, data = self.training, self.data
        uses = "training.early_stopping_patience" if training.early_stopping_patience else None
        uses = uses or ("training.restore_best" if training.restore_best else None)
        if uses and data.validation is None and data.validation_split == 0:
            raise ValueError(
                f"{uses} watches the validation loss: set data.validation or data.validation_split"
            )
        return self

    @model_validator(mode="after")
    def _freezing_needs_a_backbone(self) -> Config:
        if self.training.freeze_backbone_epochs and not architectures.is_backbone(self.model.architecture):
            raise ValueError(
                "training.freeze_backbone_epochs needs a Keras Applications backbone as "
                f"model.architecture (not {self.model.architecture})"
            )
        return self

    @model_validator(mode="after")
    def _images_fit_the_backbone(self) -> Config:
        architecture = self.model.architecture
        smallest = architectures.min_side(architecture)
        if architectures.is_backbone(architecture) and min(self.data.image_size) < smallest:
            raise ValueError(
                f"model.architecture {architecture} needs data.image_size of at least "
                f"{smallest}x{smallest} (got {self.data.image_size})"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases: no 'billion laughs' expansion."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="YAML aliases (*name) are not allowed in configs",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


# YAML 1.1 (PyYAML) reads `1e-3` as a string; users write learning rates that way.
_NoAliasLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml_error(error: yaml.YAMLError, source: str) -> ConfigError:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is not None:
        return ConfigError(
            f"{source}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
        )
    return ConfigError(f"{source}: invalid YAML: {problem}")


def parse_yaml(text: str, source: str = "config") -> Any:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except yaml.YAMLError as error:
        raise _yaml_error(error, source) from None
    except (ValueError, RecursionError) as error:
        raise ConfigError(f"{source}: invalid YAML: {error}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as handle:  # at most one byte past the limit: a huge file is never read whole
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {path}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text ({error.reason})") from None
    data = parse_yaml(text, source=str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """'training.epochs=3' -> (['training', 'epochs'], 3); the value is a YAML scalar or list."""
    key, sep, raw_value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected dotted.key=value, e.g. training.epochs=3")
    parts = key.split(".")
    if any(not part or not part.replace("_", "").isalnum() for part in parts):
        raise ConfigError(f"--set {text!r}: {key!r} is not a dotted key like training.epochs")
    value = parse_yaml(raw_value, source=f"--set {key}") if raw_value.strip() else None
    if isinstance(value, dict):
        raise ConfigError(f"--set {key}: give one value or a list, not a mapping")
    return parts, value


def apply_override(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            dotted = ".".join(parts[: depth + 1])
            raise ConfigError(f"--set {'.'.join(parts)}: '{dotted}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"unknown config key '{location}'"
    message = first["msg"].removeprefix("Value error, ")
    if isinstance(first.get("input"), dict):  # a check across keys: the message names them
        return f"config key '{location}': {message}" if location else f"config: {message}"
    if "input" in first and kind not in {"missing"}:
        shown = repr(first["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"config key '{location}': {message} (got {shown})"
    return f"config key '{location}': {message}"


def validate(tree: Any) -> Config:
    if not isinstance(tree, dict):
        raise ConfigError(f"the config must be a mapping of keys, not {type(tree).__name__}")
    try:
        return Config.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    except RecursionError:
        raise ConfigError("the config is nested too deeply") from None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file (if any), then each --set override; validated and frozen."""
    tree: dict[str, Any] = read_config_file(path) if path is not None else {}
    for override in overrides:
        parts, value = parse_override(override)
        apply_override(tree, parts, value)
    return validate(tree)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'training': {'epochs': 3}} -> {'training.epochs': 3}: a config as dotted keys."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, child in tree.items():
        flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def changed_from_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """The dotted keys of a resolved config whose values differ from the defaults, in order.

    A key the defaults do not have (a config written by newer code) counts as changed.
    """
    defaults = flatten(Config().to_dict())
    missing = object()
    return {key: value for key, value in flatten(config).items() if defaults.get(key, missing) != value}

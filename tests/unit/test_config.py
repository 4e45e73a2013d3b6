"""The config loader: pure logic, no engine, no TensorFlow."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from app.config import (
    MAX_CONFIG_BYTES,
    Config,
    ConfigError,
    load_config,
    parse_override,
    parse_yaml,
    validate,
)


def assert_one_line(error: ConfigError) -> None:
    """What the user sees after `trainbox: `: exactly one line, and not an empty one."""
    message = str(error)
    assert len(message.splitlines()) == 1 and message.strip(), repr(message)


# Where a message can point: a YAML position or the document, a --set argument, a config key.
WHERE = re.compile(r"^(config: invalid YAML|config: larger than|--set |config key '|unknown config key '"
                   r"|the config must be a mapping|the config is nested too deeply)")  # fmt: skip


def assert_names_where(error: ConfigError) -> None:
    """One line that says where the mistake is, not just that there is one."""
    assert_one_line(error)
    assert WHERE.match(str(error)), repr(str(error))


def write(tmp_path, text: str):
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


def test_defaults_carry_the_contract_keys():
    config = load_config()
    tree = config.to_dict()
    assert {"seed", "deterministic", "data", "training"} <= tree.keys()
    assert {"train", "test", "image_size"} <= tree["data"].keys()
    assert {"epochs", "batch_size"} <= tree["training"].keys()


def test_yaml_then_overrides_in_order(tmp_path):
    path = write(tmp_path, "seed: 7\ntraining:\n  epochs: 5\n")
    config = load_config(path, ["training.epochs=3", "data.image_size=[8, 8]", "model.augmentation=true"])
    assert (config.seed, config.training.epochs, config.data.image_size) == (7, 3, [8, 8])
    assert config.model.augmentation is True


def test_resolved_yaml_round_trips(tmp_path):
    config = load_config(None, ["training.batch_size=16"])
    again = load_config(write(tmp_path, config.to_yaml()))
    assert again == config


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("trainig:\n  epochs: 3\n", "unknown config key 'trainig'"),
        ("training:\n  epoch: 3\n", "unknown config key 'training.epoch'"),
        ("training:\n  epochs: three\n", "'training.epochs'"),
        ("training:\n  epochs: 0\n", "'training.epochs': Input should be greater than or equal to 1"),
        ("data:\n  validation_split: 1.5\n", "'data.validation_split'"),
        ("data:\n  train: ../../etc\n", "escapes the data directory"),
        ("data:\n  test: /etc/passwd\n", "relative to the data directory"),
        ("seed: 1\ndata:\n  train: [a\n", "invalid YAML at line 4, column 1"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("a: &anchor [1]\nb: *anchor\n", "aliases"),
        ("deterministic: 'yes'\n", "'deterministic'"),
    ],
)
def test_bad_files_name_the_key_or_position(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert fragment in str(caught.value)
    assert_one_line(caught.value)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("training.epochs", "expected dotted.key=value"),
        ("=3", "expected dotted.key=value"),
        ("training..epochs=3", "not a dotted key"),
        ("training.epochs=[1", "invalid YAML"),
        ("training=3", "'training'"),
        ("seed.value=3", "'seed'"),
        ("training.epochs={a: 1}", "not a mapping"),
        # `--set $'\n'` and friends: the newline is shown escaped, on one line
        ("\n", "--set '\\n': expected dotted.key=value"),
        ("training.\nepochs=3", "'training.\\nepochs' is not a dotted key"),
        ("training.epochs=\n", "'training.epochs': Input should be a valid integer (got None)"),
    ],
)
def test_bad_overrides(override, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    assert fragment in str(caught.value)
    assert_one_line(caught.value)


def test_a_yaml_key_with_a_newline_is_named_on_one_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, 'training:\n  "epo\\nchs": 3\n'))
    assert_one_line(caught.value)
    assert "unknown config key 'training.epo\\nchs'" in str(caught.value)


# Imports first, then 1 GiB of address space: reading the file whole fails with MemoryError.
READ_UNDER_A_MEMORY_LIMIT = """
import resource, sys
from app.config import ConfigError, load_config
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
try:
    load_config(sys.argv[1])
except ConfigError as error:
    print(error)
"""


def test_a_huge_config_file_is_refused_without_being_read_whole(tmp_path):
    huge = tmp_path / "images.tar"  # e.g. a data archive passed as --config by mistake
    with huge.open("wb") as handle:
        handle.truncate(4 << 30)  # sparse: 4 GiB that take no disk space
    result = subprocess.run(
        [sys.executable, "-c", READ_UNDER_A_MEMORY_LIMIT, str(huge)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"{huge}: larger than {MAX_CONFIG_BYTES} bytes"


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("seed: 1 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        load_config(path)
    assert_one_line(caught.value)


def test_override_into_a_value_from_the_file(tmp_path):
    with pytest.raises(ConfigError, match="'seed' is a value, not a section"):
        load_config(write(tmp_path, "seed: 1\n"), ["seed.value=3"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_override_values_are_yaml_scalars():
    assert parse_override("training.learning_rate=1e-3") == (["training", "learning_rate"], 1e-3)
    assert parse_override("data.test=null") == (["data", "test"], None)


# Any text at all: a valid config or a ConfigError, never another exception.
@seed(20261125)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(text):
    try:
        tree = parse_yaml(text)
        if tree is None:
            tree = {}
        assert isinstance(validate(tree), Config)
    except ConfigError as error:
        assert_names_where(error)


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
yaml_trees = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@seed(20261125)
@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["seed", "deterministic", "data", "model", "training", "x"]), yaml_trees)
)
def test_any_yaml_tree_is_a_config_or_a_config_error(tree):
    text = yaml.safe_dump(tree)
    try:
        validate(parse_yaml(text))
    except ConfigError as error:
        assert_names_where(error)


@seed(20261125)
@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_override_is_a_config_or_a_config_error(text):
    try:
        load_config(None, [text])
    except ConfigError as error:
        assert_names_where(error)
        assert str(error).startswith("--set ") or "config key '" in str(error), str(error)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("training.jit_compile=true", True),
        ("training.jit_compile=auto", "auto"),
        ("training.precision=mixed_bfloat16", "mixed_bfloat16"),
    ],
)
def test_training_options_for_xla_and_precision(override, expected):
    config = load_config(None, [override])
    assert getattr(config.training, override.split("=")[0].split(".")[1]) == expected


@pytest.mark.parametrize("override", ["training.jit_compile=yes please", "training.precision=float8"])
def test_bad_training_options_name_the_key(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_config(None, [override])

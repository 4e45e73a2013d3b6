"""The host's one error boundary: engine failures and bad options end in one `trainbox:` line."""

from __future__ import annotations

import subprocess
import sys

import docker.errors
import pytest
import requests.exceptions
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from invoke import Exit

import tasks
from app.launch import errors
from app.launch.errors import EXIT_USAGE, TrainboxError, UsageError
from tests.helpers import REPO_ROOT, assert_one_line_error


def api_error(explanation: str, status: int = 500) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said no", response=response, explanation=explanation)


TRANSLATIONS = {
    "permission denied": (
        docker.errors.DockerException(
            "Error while fetching server API version: ('Connection aborted.', "
            "PermissionError(13, 'Permission denied'))"
        ),
        1, "permission denied on the Docker socket",
    ),
    "daemon down": (requests.exceptions.ConnectionError("refused"), 1, "cannot reach the Docker daemon"),
    "socket missing": (
        docker.errors.DockerException(
            "Error while fetching server API version: ('Connection aborted.', "
            "FileNotFoundError(2, 'No such file or directory'))"
        ),
        1, "cannot reach the Docker daemon",
    ),
    "no GPU runtime": (
        api_error('could not select device driver "" with capabilities: [[gpu]]'), 1, "no NVIDIA runtime"
    ),
    "busy port": (
        api_error("driver failed programming external connectivity: Bind for 127.0.0.1:8888 failed: "
                  "port is already allocated"),
        EXIT_USAGE, "the port is already in use",
    ),
    "image not found": (
        docker.errors.ImageNotFound("404", explanation="No such image: trainbox:nope"),
        EXIT_USAGE, "No such image: trainbox:nope: build it first",
    ),
    "anything else": (
        api_error("something odd\nwith a second line"), 1, "Docker engine error: something odd"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", TRANSLATIONS)
def test_engine_failures_translate_to_one_line_with_an_exit_status(case):
    error, exit_code, fragment = TRANSLATIONS[case]
    translated = errors.translate(error)
    assert isinstance(translated, TrainboxError)
    assert translated.exit_code == exit_code
    assert fragment in str(translated)
    assert "\n" not in str(translated)


def test_messages_are_one_line_whatever_they_quote():
    assert str(TrainboxError("a\nb\tc  d")) == "a b c d"
    assert UsageError("x").exit_code == EXIT_USAGE


def assert_one_line(message: str) -> None:
    assert len(message.splitlines()) == 1 and message.strip(), repr(message)


@seed(20261207)
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_message_and_any_engine_text_is_one_non_empty_line(text):
    assert_one_line(str(TrainboxError(text)))
    assert_one_line(str(UsageError(text)))
    for engine_error in (api_error(text), docker.errors.DockerException(text),
                         requests.exceptions.ConnectionError(text)):  # fmt: skip
        assert_one_line(str(errors.translate(engine_error)))


def test_the_boundary_translates_engine_errors_and_nothing_else():
    with pytest.raises(TrainboxError, match="cannot reach the Docker daemon"), errors.boundary():
        raise requests.exceptions.ConnectionError("refused")
    with pytest.raises(KeyError), errors.boundary():
        raise KeyError("a bug stays a bug")


def test_tasks_end_every_host_error_in_one_line_and_its_exit_status():
    def missing_image():
        raise docker.errors.ImageNotFound("404", explanation="No such image: trainbox:nope")

    with pytest.raises(Exit) as raised:
        tasks._run(missing_image)
    assert raised.value.code == EXIT_USAGE
    assert raised.value.message.startswith("trainbox: No such image: trainbox:nope")


BAD_OPTIONS = {  # the options the CLI turns into numbers or sizes (all cases: test_host_options.py)
    "--cpus abc": ["train", "--cpus", "abc"],
    "--memory garbage": ["train", "--memory", "garbage"],
    "--workers x": ["train", "--workers", "x"],
    "--port x": ["notebook", "--port", "x"],
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_a_non_number_option_is_one_line_and_exit_2_before_anything_starts(case, tmp_path):
    # An unreachable engine: the option must be refused before the engine is ever asked.
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *BAD_OPTIONS[case], "--output-dir", str(tmp_path / "outputs")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert_one_line_error(result, case)
    assert result.returncode == EXIT_USAGE
    assert not (tmp_path / "outputs").exists()


BAD_CONFIGS = {  # what the user typed -> what the one line must show (newlines escaped)
    "--set newline": (["--set", "\n"], "--set '\\n': expected dotted.key=value"),
    "YAML key with a newline": (["--config", "{tmp}/key.yaml"], "unknown config key 'training.epo\\nchs'"),
    "--set typo": (["--set", "trainig.epochs=3"], "unknown config key 'trainig'"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_config_is_one_line_and_exit_2_before_the_engine_is_asked(case, tmp_path):
    args, fragment = BAD_CONFIGS[case]
    args = [arg.format(tmp=tmp_path) if arg.startswith("{tmp}") else arg for arg in args]
    (tmp_path / "key.yaml").write_text('training:\n  "epo\\nchs": 3\n')
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "train", *args, "--output-dir", str(tmp_path / "outputs")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert_one_line_error(result, fragment)
    assert result.returncode == EXIT_USAGE
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("bundle", ["missing.pem", "notes.txt"])
def test_a_wrong_ca_bundle_is_one_line_and_exit_2_before_the_engine_is_asked(bundle, tmp_path):
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "build", "--ca-bundle", str(tmp_path / bundle)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock", "HOME": str(tmp_path)},
    )  # fmt: skip
    fragment = "CA bundle not found" if bundle == "missing.pem" else "holds no PEM certificate"
    assert_one_line_error(result, fragment, str(tmp_path / bundle))
    assert result.returncode == EXIT_USAGE

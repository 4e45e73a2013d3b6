"""`invoke test`: host-side tests here, TensorFlow tests inside the CPU image."""

from __future__ import annotations

import subprocess
import sys

from app import settings
from app.container_env import LaunchFacts
from app.launch import containers, images
from app.launch.provenance import git_state
from app.settings import REPO_ROOT

# What runs inside the image: the TensorFlow tests only (tests/engine and tests/unit import
# docker, absent there). docker-compose.yml's `test` service runs this very command.
IMAGE_TEST_COMMAND = ("python", "-m", "pytest", "-p", "no:cacheprovider", "-m", "image", "tests/image")


def run_host_tests(pytest_args: list[str]) -> int:
    # tests/image needs TensorFlow, which the host need not have: not even collected here.
    command = [sys.executable, "-m", "pytest", "-m", "not image", "--ignore=tests/image", *pytest_args]
    print("$ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=REPO_ROOT, check=False).returncode


def image_test_command(pytest_args: list[str]) -> list[str]:
    """IMAGE_TEST_COMMAND; test paths among the arguments take the place of all of tests/image."""
    *command, default_path = IMAGE_TEST_COMMAND
    paths = [arg for arg in pytest_args if arg.startswith("tests/image")]
    return [*command, *([] if paths else [default_path]), *pytest_args]


def image_test_spec(pytest_args: list[str], echo=print) -> containers.ContainerSpec:
    """The image suite's container, in the CPU image (built first when missing or stale)."""
    image = images.ensure_image(gpu=False, echo=echo)
    command = image_test_command(pytest_args)
    tag = settings.image_tag(gpu=False)
    echo(f"$ {' '.join(command)}   (inside {tag})")
    git = git_state()
    facts = LaunchFacts(image_id=image.id, image_tag=tag, git_commit=git.commit, git_dirty=git.dirty)
    return containers.ContainerSpec(
        image=image.id, command=command, role="test", environment=facts.to_environment()
    )


def run_image_tests(pytest_args: list[str], echo=print) -> int:
    return containers.run_foreground(image_test_spec(pytest_args, echo), echo=echo)


def run_all_tests(pytest_args: list[str], echo=print) -> int:
    """Both suites at once: the image suite starts in its container, then the host suite runs
    here; the image suite's output follows the host suite's. Neither waits for the other's
    CPU-light stretches (image builds, container starts, services coming up): on 2 cores
    this takes minutes off the whole run. The first non-zero status is the result."""
    spec = image_test_spec(pytest_args, echo)
    with containers.interruptible():
        container = containers.start(spec)
        try:
            try:
                host = run_host_tests(pytest_args)
                echo(f"== the tests inside {settings.image_tag(gpu=False)} (started with the host tests)")
                image = container.wait()["StatusCode"]
            except KeyboardInterrupt:
                echo(f"\nstopping {container.name} (up to {containers.STOP_TIMEOUT_S} s) ...")
                containers.stop(container)
                return containers.EXIT_INTERRUPTED
            sys.stdout.buffer.write(container.logs(stdout=True, stderr=True))
            sys.stdout.flush()
            return next((status for status in (host, image) if status != 0), 0)
        finally:
            containers.remove_quietly(container)

"""`docker compose --profile test run --rm test` and `invoke test --image-only` run the same tests."""

from __future__ import annotations

import ast
import shlex

import yaml

from app.launch.testing import IMAGE_TEST_COMMAND, image_test_command
from tests.helpers import REPO_ROOT


def compose_test_command() -> list[str]:
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    command = services["test"]["command"]  # a string: Compose splits it as a shell would
    return shlex.split(command.replace("${TRAINBOX_TEST_ARGS:-}", ""))


def test_compose_runs_the_image_selection_of_invoke_test():
    assert compose_test_command() == list(IMAGE_TEST_COMMAND)


def test_the_image_selection_holds_no_module_that_imports_docker():
    """The image has no docker SDK: a collected module that imports it stops the whole run."""
    paths = [REPO_ROOT / arg for arg in IMAGE_TEST_COMMAND if arg.startswith("tests")]
    assert paths, IMAGE_TEST_COMMAND
    importing_docker = []
    for path in sorted(p for root in paths for p in ([root] if root.is_file() else root.rglob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            if any(name == "docker" or name.startswith(("docker.", "app.launch")) for name in names):
                importing_docker.append(str(path.relative_to(REPO_ROOT)))
    assert importing_docker == []


def test_test_paths_given_to_invoke_test_replace_the_whole_image_suite():
    assert image_test_command([]) == list(IMAGE_TEST_COMMAND)
    assert image_test_command(["-x"]) == [*IMAGE_TEST_COMMAND, "-x"]
    assert image_test_command(["tests/image/test_photos.py", "-k", "gif"]) == [
        *IMAGE_TEST_COMMAND[:-1],
        "tests/image/test_photos.py",
        "-k",
        "gif",
    ]

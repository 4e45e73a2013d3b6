"""The split that the layout stands for: the host never imports TensorFlow, the container never
imports docker, and the shared modules import neither (checked on the source, imports inside
functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

ML = {"tensorflow", "keras", "tf_keras", "numpy", "PIL", "matplotlib", "sklearn"}
ENGINE = {"docker", "requests", "invoke"}
SHARED = [
    "app/settings.py",
    "app/container_env.py",
    "app/manifest.py",
    "app/run_lock.py",
    "app/config.py",
    "app/numerics.py",
    "app/predictions.py",
]

# bench/ runs TensorFlow only inside the image (bench/workloads, where docker is absent),
# and borrows nothing from the tests. Its host side may draw photos (Pillow, NumPy).
BENCH_HOST = [path.relative_to(REPO_ROOT).as_posix() for path in sorted(REPO_ROOT.glob("bench/*.py"))]

RULES = {
    "host": (["app/launch", "tasks.py"], ML),
    "container": (["app/train", "app/__main__.py"], ENGINE),
    "shared": (SHARED, ML | ENGINE),
    "bench host": ([*BENCH_HOST, "bench/steps"], ML - {"numpy", "PIL"} | {"tests"}),
    "bench workloads": (["bench/workloads"], ENGINE | {"tests"}),
}


def python_files(paths: list[str]) -> list[Path]:
    found = []
    for name in paths:
        path = REPO_ROOT / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("side", RULES)
def test_each_side_imports_only_what_it_may(side):
    paths, forbidden = RULES[side]
    files = python_files(paths)
    assert len(files) >= len(paths)  # the rule looks at real files
    offences = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_roots(path) & forbidden)
        for path in files
        if imported_roots(path) & forbidden
    }
    assert offences == {}


def test_the_check_sees_imports_inside_functions(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    import tensorflow as tf\n    from docker import errors\n")
    assert imported_roots(sneaky) == {"tensorflow", "docker"}


def test_test_modules_have_unique_names():
    """pytest's default import mode keys test modules by file name: two test_x.py in
    different folders stop collection of the whole suite."""
    seen: dict[str, Path] = {}
    for path in sorted(REPO_ROOT.glob("tests/**/test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]} share a name"
        seen[path.name] = path

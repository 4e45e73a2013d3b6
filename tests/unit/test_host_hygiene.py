"""Host dependencies pinned with hashes, secrets kept out of git, CI removing only the project's images."""

from __future__ import annotations

import re
import subprocess

import pytest

from app.launch import locks
from tests.helpers import REPO_ROOT

REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.\[\]-]+)==(?P<version>[^ ;\\]+)", re.M)


def requirement_blocks(text: str) -> list[str]:
    """Each requirement with its continuation lines."""
    return re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])


def test_every_host_requirement_is_pinned_with_hashes():
    text = (REPO_ROOT / "requirements.txt").read_text()
    blocks = [block for block in requirement_blocks(text) if block.strip()]
    assert len(blocks) > 20
    for block in blocks:
        assert REQUIREMENT.match(block), block.splitlines()[0]
        assert "--hash=sha256:" in block, block.splitlines()[0]
    names = {match["name"] for match in REQUIREMENT.finditer(text)}
    assert {"docker", "invoke", "pyyaml", "pydantic", "ruff", "uv", "pytest"} <= names


def test_the_host_lock_comes_from_host_in_through_invoke_lock():
    assert (REPO_ROOT / "requirements" / "host.in").is_file()
    header = (REPO_ROOT / "requirements.txt").read_text().splitlines()[1]
    assert header.split("uv ", 1)[1] == " ".join(locks.host_lock_command()[1:]).replace(" --quiet", "")


def test_a_pin_with_extras_also_pins_the_plain_name_for_older_pip():
    text = "urllib3[socks]==2.7.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via selenium\n"
    assert locks.pin_extras_plainly(text) == (
        "urllib3==2.7.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n" + text
    )
    assert locks.pin_extras_plainly("docker==7.1.0 \\\n    --hash=sha256:cc\n") == (
        "docker==7.1.0 \\\n    --hash=sha256:cc\n"
    )


def test_dot_env_is_ignored_by_git():
    ignored = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "-q", ".env"], check=False)
    assert ignored.returncode == 0


def test_ci_removes_only_the_projects_images():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    commands = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if re.search(r"\bprune\b|\brmi\b|docker (rm|image rm)", line)]
    assert "invoke clean --images --base" in commands


def direct_requirements(in_file) -> set[str]:
    """The names a .in file asks for (following -r includes), normalised as pip does."""
    names = set()
    for line in in_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= direct_requirements(in_file.parent / line[3:].strip())
        elif line:
            names.add(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_every_image_pin_is_hashed_and_comes_from_its_in_file_through_invoke_lock(variant):
    requirements = REPO_ROOT / "requirements"
    text = (requirements / f"{variant}.lock").read_text()
    command = " ".join(locks.lock_command(variant)).replace(" --quiet", "")
    assert text.splitlines()[1].strip() == f"#    {command}"
    blocks = [block for block in requirement_blocks(text) if block.strip()]
    for block in blocks:
        assert REQUIREMENT.match(block), block.splitlines()[0]
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]
    pinned = {match["name"].lower().replace("_", "-") for match in REQUIREMENT.finditer(text)}
    assert direct_requirements(requirements / f"{variant}.in") <= pinned

"""The defaults the README shows are configs/default.yaml's, and both are the schema's own."""

from __future__ import annotations

import re

import yaml

from app.config import Config, load_config
from tests.helpers import REPO_ROOT


def readme_defaults() -> dict:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert blocks, "no ```yaml block of defaults under ## Configuration"
    return yaml.safe_load(blocks[0])


def test_the_readme_shows_the_schemas_defaults():
    assert readme_defaults() == Config().to_dict()


def test_configs_default_yaml_holds_every_default_of_the_schema():
    written = yaml.safe_load((REPO_ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    assert written == Config().to_dict()
    assert load_config(REPO_ROOT / "configs" / "default.yaml") == Config()

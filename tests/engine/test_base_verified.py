"""The base image is made only from packages whose signatures verify (real debootstrap, real archive)."""

from __future__ import annotations

import os
import shutil

import pytest

from app.launch import base
from app.launch.errors import TrainboxError

pytestmark = pytest.mark.docker


def test_debootstrap_with_a_keyring_that_does_not_sign_the_archive_fails_closed(tmp_path):
    assert os.geteuid() == 0 and shutil.which("debootstrap"), "debootstrap runs as root (CI installs it)"
    strangers = tmp_path / "strangers.gpg"
    strangers.write_bytes(b"")  # a keyring, but without Debian's keys
    said = []
    with pytest.raises(TrainboxError) as raised:
        base.make_base_image("trainbox-unverified:never", keyring=strangers, echo=said.append)
    message = str(raised.value)
    assert message.startswith("debootstrap bookworm from "), said
    assert "failed: E: Release signed by unknown key" in message, message
    assert "\n" not in message
    assert not [line for line in said if line.startswith("  I: Base system")]

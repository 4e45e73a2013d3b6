"""The base image's packages are verified: debootstrap gets Debian's keyring, or nothing starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.launch import base
from app.launch.errors import TrainboxError


def test_debootstrap_is_told_to_check_signatures_with_debians_keyring():
    rootfs = Path("/tmp/rootfs")
    command = base.debootstrap_command("bookworm", rootfs, base.DEBIAN_MIRROR, base.DEBIAN_KEYRING)
    assert "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg" in command
    assert command[-3:] == ["bookworm", "/tmp/rootfs", base.DEBIAN_MIRROR]


def test_a_missing_keyring_fails_closed_in_one_line_before_debootstrap_runs(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(base.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(base.os, "geteuid", lambda: 0)
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: started.append(args))
    missing = tmp_path / "debian-archive-keyring.gpg"
    with pytest.raises(TrainboxError) as raised:
        base.make_base_image("trainbox-keyringtest:x", keyring=missing, echo=lambda line: None)
    message = str(raised.value)
    assert str(missing) in message and "apt-get install debian-archive-keyring" in message
    assert "\n" not in message
    assert started == []

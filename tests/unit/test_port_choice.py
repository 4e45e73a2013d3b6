"""Ports for the servers: an explicit busy port is an error, a busy default moves on, said plainly."""

from __future__ import annotations

import re
import socket

import pytest

from app.launch import ports
from app.launch.errors import EXIT_USAGE, UsageError


@pytest.fixture
def busy_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_an_explicit_free_port_is_used(busy_port):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert ports.choose_port(free, 8888, "127.0.0.1") == free


def test_an_explicit_busy_port_is_a_usage_error(busy_port):
    with pytest.raises(UsageError, match=f"port {busy_port} on 127.0.0.1 is already in use") as raised:
        ports.choose_port(busy_port, 8888, "127.0.0.1")
    assert raised.value.exit_code == EXIT_USAGE


def test_a_busy_default_moves_to_the_next_free_port_and_says_so(busy_port):
    said = []
    chosen = ports.choose_port(None, busy_port, "127.0.0.1", echo=said.append)
    assert busy_port < chosen < busy_port + ports.PORT_SEARCH_SPAN
    assert said == [f"port {busy_port} is busy; using port {chosen} instead"]


def test_no_free_port_in_the_span_is_one_line(monkeypatch):
    monkeypatch.setattr(ports, "port_is_free", lambda address, port: False)
    expected = "ports 6006-6025 on 127.0.0.1 are all in use: choose one with --port"
    with pytest.raises(UsageError, match=re.escape(expected)):
        ports.choose_port(None, 6006, "127.0.0.1")


def test_listening_beyond_localhost_is_warned_and_a_non_address_refused():
    said = []
    assert ports.check_listen("127.0.0.1", echo=said.append) == "127.0.0.1" and said == []
    assert ports.check_listen("0.0.0.0", echo=said.append) == "0.0.0.0"
    assert len(said) == 1 and said[0].startswith("WARNING: listening on 0.0.0.0")
    with pytest.raises(UsageError, match="not an IPv4 address"):
        ports.check_listen("everywhere")
    assert ports.display_host("0.0.0.0") == "127.0.0.1" and ports.display_host("10.0.0.5") == "10.0.0.5"

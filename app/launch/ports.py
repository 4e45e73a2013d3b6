"""Host ports and addresses for the servers: 127.0.0.1 unless asked, a busy default moves on."""

from __future__ import annotations

import errno
import socket

from app.launch.errors import UsageError
from app.settings import LOCALHOST

PORT_SEARCH_SPAN = 20
EVERYWHERE = "0.0.0.0"


def port_is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def choose_port(requested: int | None, default: int, address: str, echo=print) -> int:
    """An explicit port must be free (a usage error otherwise); the default moves to the next free one."""
    if requested is not None:
        if not port_is_free(address, requested):
            raise UsageError(
                f"port {requested} on {address} is already in use: stop what uses it or pick another --port"
            )
        return requested
    for port in range(default, default + PORT_SEARCH_SPAN):
        if port_is_free(address, port):
            if port != default:
                echo(f"port {default} is busy; using port {port} instead")
            return port
    last = default + PORT_SEARCH_SPAN - 1
    raise UsageError(f"ports {default}-{last} on {address} are all in use: choose one with --port")


def check_listen(address: str, echo=print) -> str:
    try:
        socket.inet_aton(address)
    except OSError:
        example = f"e.g. {LOCALHOST} or {EVERYWHERE}"
        raise UsageError(f"--listen {address!r} is not an IPv4 address ({example})") from None
    if address != LOCALHOST:
        echo(
            f"WARNING: listening on {address}, not only {LOCALHOST}: other machines that reach "
            "this address can connect (anyone with the URL can run code as you)"
        )
    return address


def display_host(address: str) -> str:
    """The address to put in a URL for the user: the loopback one when listening everywhere."""
    return LOCALHOST if address in (EVERYWHERE, LOCALHOST) else address

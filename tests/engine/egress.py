"""What a container asks of the network: a packet sniffer in the container's own namespace.

A second container from the same image joins the watched container's network namespace
with CAP_NET_RAW and reads every packet the namespace sends (an AF_PACKET socket, no
tools needed), printing one line per outgoing TCP connection attempt (`tcp ADDRESS:PORT`)
and per DNS question (`dns NAME`). Loopback connections (the kernel talking to its
server) are not egress; a DNS question is, whichever server it goes to.
"""

from __future__ import annotations

import contextlib
import threading
import time

import docker.errors

from app import settings
from app.launch.engine import client

SNIFFER = r"""
import ipaddress, socket, struct, sys
ETH_P_ALL, PACKET_OUTGOING = 0x0003, 4
sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
print("listening", flush=True)

def dns_name(payload):
    labels, at = [], 12
    while at < len(payload) and payload[at]:
        labels.append(payload[at + 1 : at + 1 + payload[at]].decode("ascii", "replace"))
        at += 1 + payload[at]
    return ".".join(labels)

while True:
    packet, address = sniffer.recvfrom(65535)
    if address[2] != PACKET_OUTGOING or not packet:
        continue
    version = packet[0] >> 4
    if version == 4:
        header, protocol = (packet[0] & 15) * 4, packet[9]
        target = ipaddress.ip_address(packet[16:20])
    elif version == 6:
        header, protocol = 40, packet[6]
        target = ipaddress.ip_address(packet[24:40])
    else:
        continue
    segment = packet[header:]
    if protocol == 17 and len(segment) >= 8 and struct.unpack("!H", segment[2:4])[0] == 53:
        print("dns", dns_name(segment[8:]), flush=True)
    elif protocol == 6 and len(segment) >= 14 and not target.is_loopback:
        flags = segment[13]
        if flags & 0x02 and not flags & 0x10:  # SYN without ACK: a connection being opened
            print(f"tcp {target}:{struct.unpack('!H', segment[2:4])[0]}", flush=True)
"""


class Egress:
    """The sniffer attached to one container; `lines()` is what it has seen so far."""

    def __init__(self, watched, image_id: str):
        self.probe = client().containers.run(
            image_id,
            ["python", "-c", SNIFFER],
            detach=True,
            user="0",
            network_mode=f"container:{watched.id}",
            cap_drop=["ALL"],
            cap_add=["NET_RAW"],
            labels=settings.project_labels(**{"trainbox.role": "egress-probe"}),
        )
        deadline = time.monotonic() + 60
        while "listening" not in self._log():
            assert time.monotonic() < deadline, f"the sniffer did not start: {self._log()}"
            self.probe.reload()
            assert self.probe.status != "exited", f"the sniffer stopped: {self._log()}"
            time.sleep(0.2)

    def _log(self) -> str:
        return self.probe.logs().decode("utf-8", "replace")

    def lines(self) -> list[str]:
        return [line for line in self._log().splitlines() if line != "listening"]

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):  # removed already
            self.probe.remove(force=True)


def attach_when_started(role: str, image_id: str, known: set[str], mounting: str) -> dict:
    """Attach a sniffer (run from `image_id`) to the next project container of `role` that
    mounts the host folder `mounting`, the moment the engine has it (before the server in it
    answers); the result lands in the returned dict (`egress`, or `error`)."""
    found: dict = {}

    def watch():
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline:
                labels = [f"{settings.PROJECT_LABEL}={settings.PROJECT_NAME}", f"trainbox.role={role}"]
                # Ours is the one mounting `mounting`: other sessions' containers start meanwhile.
                fresh = [
                    c
                    for c in client().containers.list(filters={"label": labels})
                    if c.id not in known
                    and any(m.get("Source") == mounting for m in c.attrs.get("Mounts", []))
                ]
                if fresh:
                    found["egress"] = Egress(fresh[0], image_id)
                    return
                time.sleep(0.1)
            found["error"] = f"no {role} container started"
        except Exception as error:  # reported to the test, which fails with it
            found["error"] = repr(error)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    found["thread"] = thread
    return found

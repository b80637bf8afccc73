"""What an agent tells the server about its host when it registers: name, address, OS; and
the stable id an agent takes when none is configured (:func:`default_agent_id`)."""

from __future__ import annotations

import hashlib
import platform
import re
import socket
from pathlib import Path

__all__ = ["default_agent_id", "host_facts"]

def host_facts() -> dict[str, str]:
    """Host name, primary IP, OS and architecture (may resolve DNS: call in a thread)."""
    hostname = socket.gethostname()
    ip = ""
    try:
        # The source address of a route to the outside; no packet is sent for UDP connect.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.255.255.255", 1))
            ip = sock.getsockname()[0]
    except OSError:
        try:
            ip = socket.gethostbyname(hostname)
        except OSError:
            ip = "127.0.0.1"
    return {"hostname": hostname, "ip": ip, "os": platform.system().lower(),
            "arch": platform.machine()}


def default_agent_id() -> str:
    """A stable id for this machine: ``<hostname>-<8 hex of sha256(machine-id)>``.

    The machine id comes from ``/etc/machine-id`` (systemd) or ``/var/lib/dbus/machine-id``;
    without one, the host name alone is hashed. Characters outside ``[A-Za-z0-9._-]`` in the
    host name become ``-``.
    """
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-.") or "agent"
    machine = ""
    for candidate in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine = Path(candidate).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if machine:
            break
    digest = hashlib.sha256((machine or host).encode()).hexdigest()[:8]
    return f"{host[:100]}-{digest}"

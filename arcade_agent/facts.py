"""What an agent tells the server about its host when it registers: name, address, OS."""

from __future__ import annotations

import platform
import socket

__all__ = ["host_facts"]

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

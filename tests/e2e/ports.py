"""Pick free TCP ports so several embedded Airflows can run side by side on one machine."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """
    Return ``count`` distinct ports that were free a moment ago.

    All sockets stay bound until every port is picked, so the kernel cannot hand the same one out twice.
    Another process may still take one before Airflow binds it; that shows up as a failed start.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports

"""Listening sockets: where they listen and how many connections wait."""

from __future__ import annotations

import socket

import pytest

from trio_runner.http.listen import format_address, listen


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(
    not (socket.has_dualstack_ipv6() and _ipv6_loopback()), reason="no IPv6 here"
)
def test_an_empty_host_listens_on_ipv4_and_ipv6() -> None:
    with listen(":0") as sock:
        port = sock.getsockname()[1]
        assert format_address(sock) == f"[::]:{port}"
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, port), timeout=5):
                accepted, _ = sock.accept()
                accepted.close()


def test_an_ipv4_host_listens_on_that_host_only() -> None:
    with listen("127.0.0.1:0") as sock:
        assert sock.family == socket.AF_INET
        assert format_address(sock).startswith("127.0.0.1:")


def test_a_burst_of_connections_waits_in_the_backlog() -> None:
    # More than the old backlog of 100, none accepted yet: every one is
    # queued by the kernel (a full backlog would drop the SYNs).
    clients = []
    with listen("127.0.0.1:0") as sock:
        sock.settimeout(5)
        port = sock.getsockname()[1]
        try:
            for _ in range(300):
                client = socket.socket()
                client.setblocking(False)
                client.connect_ex(("127.0.0.1", port))
                clients.append(client)
            for _ in clients:
                sock.accept()[0].close()
        finally:
            for client in clients:
                client.close()

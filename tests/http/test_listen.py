"""Listening sockets: where they listen and how many connections wait."""

from __future__ import annotations

import socket

import pytest

from trio_runner.http.listen import format_address, listen, socket_address


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


DUAL_STACK = pytest.mark.skipif(
    not (socket.has_dualstack_ipv6() and _ipv6_loopback()), reason="no IPv6 here"
)


@DUAL_STACK
@pytest.mark.parametrize("address", [":0", "[::]:0"])
def test_an_empty_host_listens_on_ipv4_and_ipv6(address: str) -> None:
    with listen(address) as sock:
        port = sock.getsockname()[1]
        assert format_address(sock) == f"[::]:{port}"
        peers = []
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, port), timeout=5):
                accepted, peer = sock.accept()
                peers.append(socket_address(peer))
                accepted.close()
    # As Go gives them: an IPv4 client is not "::ffff:127.0.0.1".
    assert [host for host, _ in peers] == ["127.0.0.1", "::1"]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        (("::ffff:10.1.2.3", 80, 0, 0), ("10.1.2.3", 80)),
        (("::ffff:0:1", 80, 0, 0), ("::ffff:0:1", 80)),
        (("2001:db8::1", 443, 0, 0), ("2001:db8::1", 443)),
        (("127.0.0.1", 8080), ("127.0.0.1", 8080)),
        ("/run/unix.sock", None),
    ],
)
def test_socket_address_gives_ipv4_clients_as_ipv4(
    peer: object, address: tuple[str, int] | None
) -> None:
    assert socket_address(peer) == address


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

from __future__ import annotations

import ipaddress

import pytest

from tests.http.middleware.apps import Answer, call, http_scope
from trio_runner.config.model import TRUSTED_SUBNETS
from trio_runner.errors import ConfigError
from trio_runner.http.middleware.proxy import (
    Forwarding,
    Hop,
    ProxyPolicy,
    TrustedProxies,
    parse_node,
)

POLICY = ProxyPolicy(TRUSTED_SUBNETS)
PROXY = "10.0.0.5"  # inside 10.0.0.0/8
STRANGER = "203.0.113.9"  # a documentation address: never trusted


def hop(text: str, port: int = 0) -> Hop:
    return Hop(ipaddress.ip_address(text), port)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.7", hop("198.51.100.7")),
        (" 198.51.100.7 ", hop("198.51.100.7")),
        ("198.51.100.7:4711", hop("198.51.100.7", 4711)),
        ("2001:db8::1", hop("2001:db8::1")),
        ("[2001:db8::1]", hop("2001:db8::1")),
        ("[2001:db8::1]:4711", hop("2001:db8::1", 4711)),
        ('"[2001:db8::1]:4711"', hop("2001:db8::1", 4711)),
        ('"198.51.100.7"', hop("198.51.100.7")),
        ("::ffff:198.51.100.7", hop("198.51.100.7")),
        ("198.51.100.7:_hidden", hop("198.51.100.7")),
        ("198.51.100.7:99999", hop("198.51.100.7")),
        ("unknown", None),
        ("_hidden", None),
        ("example.com", None),
        ("", None),
        ("198.51.100.300", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ('"198.51.100.7', None),
        ("198.51.100.7, 10.0.0.1", None),
    ],
)
def test_parse_node_takes_only_ip_addresses(text: str, expected: Hop | None) -> None:
    assert parse_node(text) == expected


CLIENT = "198.51.100.7"

# (headers, expected client address or None for "the peer stands", scheme)
RESOLVE_CASES = [
    pytest.param([], None, None, id="no headers"),
    pytest.param([(b"x-forwarded-for", CLIENT.encode())], CLIENT, None, id="xff"),
    pytest.param(
        [(b"x-forwarded-for", b"192.0.2.1, 198.51.100.7")],
        CLIENT,
        None,
        id="xff right-most untrusted hop, not the spoofable left-most",
    ),
    pytest.param(
        [(b"x-forwarded-for", b"198.51.100.7, 10.1.1.1, 10.2.2.2")],
        CLIENT,
        None,
        id="xff skips trusted hops from the right",
    ),
    pytest.param(
        [(b"x-forwarded-for", b"10.1.1.1, 10.2.2.2")],
        "10.1.1.1",
        None,
        id="xff all trusted: the left-most",
    ),
    pytest.param(
        [(b"x-forwarded-for", b"192.0.2.1"), (b"x-forwarded-for", b"198.51.100.7")],
        CLIENT,
        None,
        id="xff over two lines is one list",
    ),
    pytest.param(
        [(b"x-forwarded-for", b"198.51.100.7, garbage")],
        None,
        None,
        id="xff a trusted proxy wrote garbage: the peer stands",
    ),
    pytest.param(
        [(b"x-forwarded-for", b"not-an-ip")], None, None, id="xff not an address"
    ),
    pytest.param(
        [(b"x-forwarded-for", b"[2001:db8::9]:443")],
        "2001:db8::9",
        None,
        id="xff bracketed ipv6 with port",
    ),
    pytest.param(
        [(b"forwarded", b"for=198.51.100.7;proto=https")],
        CLIENT,
        "https",
        id="forwarded for and proto",
    ),
    pytest.param(
        [(b"forwarded", b'for="[2001:db8::7]:4711";proto=https;by=10.0.0.5')],
        "2001:db8::7",
        "https",
        id="forwarded quoted ipv6 with port",
    ),
    pytest.param(
        [(b"forwarded", b"For=198.51.100.7;PROTO=HTTPS")],
        CLIENT,
        "https",
        id="forwarded names and values are case-insensitive",
    ),
    pytest.param(
        [(b"forwarded", b"for=192.0.2.1;proto=http, for=198.51.100.7;proto=https")],
        CLIENT,
        "https",
        id="forwarded right-most untrusted element, with its own proto",
    ),
    pytest.param(
        [(b"forwarded", b"for=unknown"), (b"x-forwarded-for", CLIENT.encode())],
        None,
        None,
        id="forwarded present but unusable: lower headers do not decide",
    ),
    pytest.param(
        [(b"forwarded", b'for="198.51.100.7'), (b"x-real-ip", CLIENT.encode())],
        None,
        None,
        id="forwarded with an unclosed quote",
    ),
    pytest.param(
        [(b"forwarded", b"for=198.51.100.7;for=192.0.2.1")],
        None,
        None,
        id="forwarded repeats a parameter",
    ),
    pytest.param(
        [(b"forwarded", b'for=198.51.100.7;ext="a,b;c"')],
        CLIENT,
        None,
        id="forwarded separators inside quotes",
    ),
    pytest.param(
        [(b"forwarded", b"proto=https")], None, None, id="forwarded without for"
    ),
    pytest.param(
        [(b"x-forwarded-for", b"192.0.2.1"), (b"x-real-ip", CLIENT.encode())],
        "192.0.2.1",
        None,
        id="xff before x-real-ip",
    ),
    pytest.param([(b"x-real-ip", CLIENT.encode())], CLIENT, None, id="x-real-ip"),
    pytest.param(
        [(b"x-real-ip", b"198.51.100.7"), (b"x-real-ip", b"192.0.2.1")],
        None,
        None,
        id="x-real-ip twice is ambiguous",
    ),
    pytest.param(
        [(b"true-client-ip", CLIENT.encode())], CLIENT, None, id="true-client-ip"
    ),
    pytest.param(
        [(b"cf-connecting-ip", CLIENT.encode())], CLIENT, None, id="cf-connecting-ip"
    ),
    pytest.param(
        [(b"true-client-ip", b"192.0.2.1"), (b"cf-connecting-ip", CLIENT.encode())],
        "192.0.2.1",
        None,
        id="true-client-ip before cf-connecting-ip",
    ),
    pytest.param(
        [(b"x-real-ip", b"localhost")], None, None, id="x-real-ip a host name"
    ),
    pytest.param([(b"x-forwarded-proto", b"https")], None, "https", id="proto alone"),
    pytest.param(
        [(b"x-forwarded-proto", b"gopher")], None, None, id="proto not http(s)"
    ),
    pytest.param(
        [
            (b"x-forwarded-for", b"192.0.2.1, 198.51.100.7, 10.0.0.1"),
            (b"x-forwarded-proto", b"http, https, http"),
        ],
        CLIENT,
        "https",
        id="proto at the chosen hop's position",
    ),
    pytest.param(
        [
            (b"x-forwarded-for", b"192.0.2.1, 198.51.100.7"),
            (b"x-forwarded-proto", b"https"),
        ],
        CLIENT,
        "https",
        id="one proto for a longer chain",
    ),
    pytest.param(
        [(b"x-real-ip", CLIENT.encode()), (b"x-forwarded-proto", b"HTTPS")],
        CLIENT,
        "https",
        id="x-real-ip and proto",
    ),
]


@pytest.mark.parametrize(("headers", "client", "scheme"), RESOLVE_CASES)
def test_proxy_policy_resolves_client_from_a_trusted_peer(
    headers: list[tuple[bytes, bytes]], client: str | None, scheme: str | None
) -> None:
    forwarding = POLICY.resolve(headers, PROXY)
    assert (None if forwarding.client is None else str(forwarding.client.address)) == (
        client
    )
    assert forwarding.scheme == scheme


@pytest.mark.parametrize(("headers", "client", "scheme"), RESOLVE_CASES)
def test_proxy_policy_ignores_every_header_from_an_untrusted_peer(
    headers: list[tuple[bytes, bytes]], client: str | None, scheme: str | None
) -> None:
    assert POLICY.resolve(headers, STRANGER) == Forwarding()


@pytest.mark.parametrize(
    "peer", ["127.0.0.1", "::1", "::ffff:10.0.0.5", "[::1]", "192.168.1.1"]
)
def test_proxy_policy_trusts_default_subnets(peer: str) -> None:
    forwarding = POLICY.resolve([(b"x-real-ip", CLIENT.encode())], peer)
    assert forwarding.client == hop(CLIENT)


@pytest.mark.parametrize("peer", ["8.8.8.8", "2001:db8::1", "unix:/tmp/s", ""])
def test_proxy_policy_does_not_trust_other_peers(peer: str) -> None:
    assert POLICY.resolve([(b"x-real-ip", CLIENT.encode())], peer) == Forwarding()


def test_proxy_policy_with_no_subnets_trusts_nobody() -> None:
    policy = ProxyPolicy(())
    assert policy.resolve([(b"x-real-ip", CLIENT.encode())], "127.0.0.1") == (
        Forwarding()
    )


def test_proxy_policy_refuses_a_bad_subnet() -> None:
    with pytest.raises(ConfigError, match="not a network"):
        ProxyPolicy(["10.0.0.0/33"])


async def test_trusted_proxies_rewrites_client_and_scheme_of_the_scope() -> None:
    app = Answer()
    scope = http_scope(
        headers=[(b"forwarded", b'for="[2001:db8::7]:4711";proto=https')],
        client=(PROXY, 50000),
    )
    await call(TrustedProxies(app, POLICY), scope)
    assert app.scope["client"] == ("2001:db8::7", 4711)
    assert app.scope["scheme"] == "https"
    assert scope["client"] == (PROXY, 50000)  # the caller's scope is not changed


async def test_trusted_proxies_leaves_an_untrusted_peer_alone() -> None:
    app = Answer()
    scope = http_scope(
        headers=[(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", b"https")],
        client=(STRANGER, 50000),
    )
    await call(TrustedProxies(app, POLICY), scope)
    assert app.scope["client"] == (STRANGER, 50000)
    assert app.scope["scheme"] == "http"


async def test_trusted_proxies_gives_websockets_ws_schemes() -> None:
    app = Answer()
    scope = http_scope(headers=[(b"x-forwarded-proto", b"https")])
    scope["type"] = "websocket"
    scope["scheme"] = "ws"
    await TrustedProxies(app, POLICY)(scope, _never, _nowhere)
    assert app.scope["scheme"] == "wss"


async def test_trusted_proxies_passes_a_scope_without_client() -> None:
    app = Answer()
    scope = http_scope(headers=[(b"x-real-ip", CLIENT.encode())], client=None)
    await call(TrustedProxies(app, POLICY), scope)
    assert app.scope["client"] is None


async def _never() -> dict[str, object]:
    raise AssertionError("not received")


async def _nowhere(message: object) -> None:
    pass

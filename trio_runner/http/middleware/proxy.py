"""Trusted proxies: the client's own address and scheme, from proxy headers.

Behind a reverse proxy the TCP peer is the proxy, not the client. When the
peer is inside ``http.trusted_subnets`` (loopback and private networks by
default) the first of these headers that is present names the client:

    Forwarded (for=)  X-Forwarded-For  X-Real-IP  True-Client-IP  CF-Connecting-IP

and ``Forwarded: proto=`` or ``X-Forwarded-Proto`` the scheme it used. The
ASGI scope is rewritten (``client``, ``scheme``), so the bridge, PHP's
``REMOTE_ADDR`` and URI, and the access log all see the client.

Invariants, each pinned by a test in ``tests/http/middleware/test_proxy.py``:

- From a peer outside the trusted subnets every one of these headers is
  ignored: a client cannot spoof its address by sending them.
- Only an IP address is ever taken (IPv4, IPv6, quoted ``"[v6]:port"`` in
  ``Forwarded``); ``unknown``, obfuscated names, host names and garbage
  leave the peer address standing. The first header present decides: a
  malformed ``Forwarded`` does not hand the decision to a lower header.
- In the list headers (``X-Forwarded-For``, ``Forwarded``) each proxy
  appends the address it saw, so only the right-hand end is written by
  proxies we trust. The client is the right-most hop that is not itself a
  trusted proxy (as nginx's ``real_ip_recursive`` picks it); when every hop
  is trusted, the left-most. RoadRunner takes the left-most, which any
  client can set by sending the header itself.
- A single-address header (``X-Real-IP`` ...) sent twice is ambiguous and
  ignored.
- The scheme is ``http`` or ``https`` only: ``proto=`` of the ``Forwarded``
  element the client was taken from; else ``X-Forwarded-Proto``, at the
  client's position when it lists as many values as ``X-Forwarded-For``,
  or its one value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

import attrs

from trio_runner.errors import ConfigError
from trio_runner.http.asgi import ASGIApp, Receive, Scope, Send
from trio_runner.http.middleware.field import header_values, single_header, split_list

__all__ = ["Forwarding", "ProxyPolicy", "TrustedProxies", "parse_node"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORWARDED = b"forwarded"
_FORWARDED_FOR = b"x-forwarded-for"
_SINGLE_ADDRESS = (b"x-real-ip", b"true-client-ip", b"cf-connecting-ip")
_FORWARDED_PROTO = b"x-forwarded-proto"
# Every header this module reads: a request with none of them (nearly all
# requests that reach a server directly) needs no further look.
_PROXY_HEADERS = frozenset(
    {_FORWARDED, _FORWARDED_FOR, _FORWARDED_PROTO, *_SINGLE_ADDRESS}
)
_SCHEMES = {"http": "http", "https": "https"}
_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}
_ESCAPE = re.compile(r"\\(.)")


@attrs.frozen
class Hop:
    """One proxy hop's address, with the port when the header gave one."""

    address: IPAddress
    port: int = 0


@attrs.frozen
class Forwarding:
    """What the trusted proxy headers say; None where they say nothing usable."""

    client: Hop | None = None
    scheme: str | None = None


_NOTHING = Forwarding()


def parse_node(text: str) -> Hop | None:
    """An address as proxies write it, or None when it is not an IP address.

    Accepts ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]``
    and ``[2001:db8::1]:80``, quoted or not. An IPv4-mapped IPv6 address
    becomes the IPv4 one. A port that is not a number (RFC 7239 allows
    obfuscated ones) is dropped; the address still counts.
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = _ESCAPE.sub(r"\1", text[1:-1]).strip()
    port_text = ""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    port = int(port_text) if port_text.isdigit() and int(port_text) < 65536 else 0
    return Hop(address, port)


def _networks(subnets: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    networks = []
    for subnet in subnets:
        try:
            networks.append(ipaddress.ip_network(subnet, strict=False))
        except ValueError:
            raise ConfigError(
                f"http.trusted_subnets has {subnet!r}, which is not a network "
                'such as "10.0.0.0/8" or "::1/128"'
            ) from None
    return tuple(networks)


@attrs.frozen
class ProxyPolicy:
    """Which peers are trusted proxies, and what their headers say.

    Raises:
        ConfigError: a subnet is not a network in CIDR form.
    """

    subnets: tuple[IPNetwork, ...] = attrs.field(converter=_networks)

    def trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self.subnets)

    def resolve(self, headers: Sequence[tuple[bytes, bytes]], peer: str) -> Forwarding:
        """What to believe about a request from ``peer`` with ``headers``."""
        for name, _ in headers:  # a loop, not any(): this runs per request
            if bytes(name).lower() in _PROXY_HEADERS:
                break
        else:
            return _NOTHING
        peer_hop = parse_node(peer)
        if peer_hop is None or not self.trusts(peer_hop.address):
            return Forwarding()
        forwarded = header_values(headers, _FORWARDED)
        if _present(forwarded):
            return self._from_forwarded(forwarded)
        protos = split_list(header_values(headers, _FORWARDED_PROTO))
        listed = split_list(header_values(headers, _FORWARDED_FOR))
        if listed:
            return self._from_forwarded_for(listed, protos)
        scheme = _scheme(protos[0]) if len(protos) == 1 else None
        for name in _SINGLE_ADDRESS:
            if _present(header_values(headers, name)):
                value = single_header(headers, name)
                client = None if value is None else parse_node(value.decode("latin-1"))
                return Forwarding(client, scheme)
        return Forwarding(None, scheme)

    def _from_forwarded(self, values: list[bytes]) -> Forwarding:
        elements = _parse_forwarded(b",".join(values).decode("latin-1"))
        if elements is None:
            return Forwarding()
        hops = [parse_node(element.get("for", "")) for element in elements]
        index = self._client_index(hops)
        if index is None:
            return Forwarding()
        return Forwarding(hops[index], _scheme(elements[index].get("proto", "")))

    def _from_forwarded_for(
        self, listed: list[bytes], protos: list[bytes]
    ) -> Forwarding:
        hops = [parse_node(item.decode("latin-1")) for item in listed]
        index = self._client_index(hops)
        if index is not None and len(protos) == len(hops):
            # Each proxy appended the scheme it saw beside the address.
            return Forwarding(hops[index], _scheme(protos[index]))
        scheme = _scheme(protos[0]) if len(protos) == 1 else None
        return Forwarding(None if index is None else hops[index], scheme)

    def _client_index(self, hops: Sequence[Hop | None]) -> int | None:
        """The right-most hop that is not a trusted proxy (see the module)."""
        for index in range(len(hops) - 1, -1, -1):
            hop = hops[index]
            if hop is None:
                return None  # a trusted proxy wrote something unusable: stop
            if not self.trusts(hop.address):
                return index
        return 0 if hops else None


@attrs.frozen
class TrustedProxies:
    """ASGI middleware that rewrites ``client`` and ``scheme`` for proxied requests.

    ``http`` and ``websocket`` scopes from a trusted peer get a copy of the
    scope with what the proxy headers say; anything else passes unchanged.
    """

    app: ASGIApp
    policy: ProxyPolicy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            forwarding = self.policy.resolve(
                scope.get("headers", ()), str(scope["client"][0])
            )
            if forwarding.client is not None or forwarding.scheme is not None:
                scope = dict(scope)
                if forwarding.client is not None:
                    hop = forwarding.client
                    scope["client"] = (str(hop.address), hop.port)
                if forwarding.scheme is not None:
                    schemes = (
                        _SCHEMES if scope["type"] == "http" else _WEBSOCKET_SCHEMES
                    )
                    scope["scheme"] = schemes[forwarding.scheme]
        await self.app(scope, receive, send)


def _present(values: list[bytes]) -> bool:
    return any(value.strip() for value in values)


def _scheme(value: bytes | str) -> str | None:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return _SCHEMES.get(text.strip().strip('"').lower())


def _parse_forwarded(text: str) -> list[dict[str, str]] | None:
    """The elements of a ``Forwarded`` field (RFC 7239), None when malformed.

    Each element maps lower-cased parameter names to unquoted values. An
    element that repeats a parameter is malformed, as the RFC says.
    """
    elements: list[dict[str, str]] = []
    for raw_element in _split_unquoted(text, ","):
        if not raw_element.strip():
            continue
        element: dict[str, str] = {}
        for pair in _split_unquoted(raw_element, ";"):
            if not pair.strip():
                continue
            key, equals, value = pair.partition("=")
            key = key.strip().lower()
            if not equals or not key or key in element:
                return None
            element[key] = value.strip()
        elements.append(element)
    return elements


def _split_unquoted(text: str, separator: str) -> list[str]:
    """``text`` split on ``separator`` where it is not inside a quoted string."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts

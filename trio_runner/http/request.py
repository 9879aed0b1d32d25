"""The request context PHP receives: an ASGI scope as RoadRunner would see it.

PHP's ``spiral/roadrunner-http`` builds its PSR-7 request from this context
(PROTOCOL.md 4.2), so every field matches what RoadRunner's Go server puts
there, down to Go's quirks:

- header names are Go-canonical (``x-foo-bar`` becomes ``X-Foo-Bar``), every
  value of a repeated header is kept in order, and there is no ``Host`` and
  no ``Transfer-Encoding`` entry (Go moves them out of the header map);
- over HTTP/2 and HTTP/3 several ``Cookie`` headers are joined with ``"; "``
  into one value, as Go's HTTP/2 server does;
- cookies are URL-unescaped, and one that fails to unescape is dropped;
- the URI is absolute, built from the Host header, and has CR and LF removed;
  a fragment in the request target (clients never send one) is left out,
  and the asterisk-form target (``OPTIONS *``) becomes the bare origin.

The Host header is pasted into that URI, so one that is not ``host[:port]``
(``Host: x/admin?``) would move the path PHP sees. ``target_problem`` says
why a request's Host or target cannot make a URI; the bridge answers those
requests 400 before they reach PHP (``RequestContext`` trusts its scope).

Two encodings: protobuf ``http.v1.Request`` (RoadRunner 2024.1 and later,
frame flag 0x80) and the legacy JSON object (flag 0x08). Header values are
``bytes`` in protobuf, so bytes that are not UTF-8 reach PHP untouched.
JSON cannot carry raw bytes: there every value that is valid UTF-8 is sent
as is, and any other value is decoded as Latin-1, one character per byte,
so PHP can still recover the bytes (``mb_convert_encoding($v, 'ISO-8859-1',
'UTF-8')``). Go sends U+FFFD instead, which loses them.

Nothing here does I/O; the body is read by the bridge.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import attrs

from trio_runner.http.asgi import Scope
from trio_runner.http.fields import TOKEN_BYTES
from trio_runner.http.proto import wire
from trio_runner.protocol.frame import Flag

__all__ = [
    "ContextCodec",
    "RequestContext",
    "canonical_header_name",
    "encode_request_context",
    "parse_cookies",
    "target_problem",
]


class ContextCodec(enum.Enum):
    """How the request context is encoded for PHP."""

    PROTO = "proto"
    """``http.v1.Request``, for roadrunner-http 3.5 and later (the default)."""

    JSON = "json"
    """The legacy JSON object, for roadrunner-http before 3.5."""

    @property
    def flag(self) -> int:
        """The codec bit of the request frame's flags byte."""
        if self is ContextCodec.PROTO:
            return int(Flag.CODEC_PROTO)
        return int(Flag.CODEC_JSON)


# The bytes Go accepts in a header or cookie name.
_TOKEN = frozenset(TOKEN_BYTES)
_TOKEN_TEXT = frozenset(chr(byte) for byte in _TOKEN)

# Headers Go takes out of the request's header map (PROTOCOL.md 4.2).
_DROPPED_HEADERS = frozenset({"Host", "Transfer-Encoding"})

_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "2": "HTTP/2.0", "3": "HTTP/3.0"}

# Bytes Go allows in a cookie value: printable ASCII except " ; and \.
_COOKIE_VALUE = frozenset(range(0x20, 0x7F)) - frozenset(b'";\\')
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_OWS = b" \t\r\n"

# Bytes left as they are in the URI path; others are percent-encoded, as
# Go's URL.String() does for bytes that cannot appear in a path.
_PATH_SAFE = frozenset(range(0x21, 0x7F))
_PATH_SAFE_TEXT = "/!$&'()*+,;=:@"
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Host = uri-host [":" port] (RFC 9110 7.2), uri-host as RFC 3986 3.2.2
# spells it: a reg-name (IPv4 addresses are reg-names too) or an IP literal
# in brackets. No userinfo, no "/?#@", no whitespace or control bytes, no
# bare ":port"; an empty port ("host:") is allowed, as RFC 3986 and Go
# allow it. Group 1 is an IPv6 literal's address, group 2 the port.
# The reg-name is unrolled with possessive quantifiers ([c]*+(%XX[c]*+)*+):
# a plain name is one scan of a character class, and nothing backtracks.
_REG_CHAR = rb"[-A-Za-z0-9._~!$&'()*+,;=]"
_HOST = re.compile(
    rb"(?=[^:])(?:%s*+(?:%%[0-9A-Fa-f]{2}%s*+)*+" % (_REG_CHAR, _REG_CHAR)
    + rb"|\[(?:([0-9A-Fa-f:.]+)|[vV][0-9A-Fa-f]+\.(?:%s|:)+)\])" % _REG_CHAR
    + rb"(?::([0-9]{0,5}))?"
)
_ABSOLUTE_FORM = (b"http://", b"https://")


@functools.lru_cache(maxsize=512)
def canonical_header_name(name: str) -> str:
    """Return ``name`` in Go's canonical form: ``x-foo-bar`` -> ``X-Foo-Bar``.

    Like Go, a name holding any byte that is not a token character (a
    space, a colon, a non-ASCII byte) is returned unchanged.
    """
    if not _TOKEN_TEXT.issuperset(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


@functools.lru_cache(maxsize=512)
def _canonical_bytes(raw: bytes) -> str:
    """``canonical_header_name`` of a raw (ASGI) header name."""
    return canonical_header_name(raw.decode("latin-1"))


def parse_cookies(lines: Iterable[bytes]) -> dict[str, bytes]:
    """Parse ``Cookie`` header values into name -> URL-unescaped value.

    Follows Go's ``Request.Cookies`` and RoadRunner's unescaping: pairs are
    split on ``;``, a name must be a token, a value may be double-quoted
    and must be printable ASCII without ``"``, ``;`` or ``\\``, and ``+``
    and ``%XX`` are unescaped. A pair that breaks any rule is dropped. When
    a name repeats, the last value wins.
    """
    cookies: dict[str, bytes] = {}
    for line in lines:
        for part in line.split(b";"):
            name, _, value = part.strip(_OWS).partition(b"=")
            name = name.strip(_OWS)
            if not name or not _TOKEN.issuperset(name):
                continue
            if len(value) > 1 and value[0] == value[-1] == ord('"'):
                value = value[1:-1]
            if not _COOKIE_VALUE.issuperset(value) or _BAD_ESCAPE.search(value):
                continue
            cookies[name.decode("ascii")] = unquote_to_bytes(value.replace(b"+", b" "))
    return cookies


def _text(raw: bytes) -> str:
    """Decode header or URL bytes: UTF-8 when valid, else Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _strip_crlf(text: str) -> str:
    if "\r" in text or "\n" in text:  # rare: no copies otherwise
        return text.replace("\r", "").replace("\n", "")
    return text


def _escape_path(raw: bytes) -> str:
    if _PATH_SAFE.issuperset(raw):
        return raw.decode("ascii")
    return "".join(chr(b) if b in _PATH_SAFE else f"%{b:02X}" for b in raw)


def _format_host(host: str, port: int | None, scheme: str) -> str:
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"


@attrs.frozen
class RequestContext:
    """Everything PHP learns about a request besides its body.

    Build one with ``from_scope`` and encode it with ``encode``. Header and
    cookie names are ``str`` (they are ASCII tokens); their values stay
    ``bytes`` until a codec decides how to carry them.

    Attributes:
        remote_addr: the client IP without port or brackets; ``""`` if the
            server did not say.
        protocol: ``HTTP/1.0``, ``HTTP/1.1``, ``HTTP/2.0`` or ``HTTP/3.0``.
        method: the request method.
        uri: the absolute request URI.
        headers: canonical name -> values, in the order names first arrived.
        cookies: name -> unescaped value.
        raw_query: the query string as received, without CR and LF.
        parsed: the body is the JSON data tree of a form (``body.py``).
        uploads: the JSON of the uploads tree of a multipart form, None
            for other requests.
    """

    remote_addr: str
    protocol: str
    method: str
    uri: str
    headers: tuple[tuple[str, tuple[bytes, ...]], ...] = ()
    cookies: tuple[tuple[str, bytes], ...] = ()
    raw_query: str = ""
    parsed: bool = False
    uploads: bytes | None = None

    @classmethod
    def from_scope(
        cls, scope: Scope, *, parsed: bool = False, uploads: bytes | None = None
    ) -> RequestContext:
        """Build the context of an ASGI ``http`` scope and its read body."""
        version = str(scope.get("http_version", "1.1"))
        protocol = _PROTOCOLS.get(version)
        if protocol is None:  # ASGI says "2", Go says "HTTP/2.0"
            protocol = f"HTTP/{version}" if "." in version else f"HTTP/{version}.0"

        grouped: dict[str, list[bytes]] = {}
        host = b""
        for raw_name, value in scope.get("headers", ()):
            name = _canonical_bytes(bytes(raw_name))
            if name in _DROPPED_HEADERS:
                if name == "Host" and not host:
                    host = bytes(value)
                continue
            values = grouped.get(name)
            if values is None:
                grouped[name] = [bytes(value)]
            else:
                values.append(bytes(value))

        cookies: tuple[tuple[str, bytes], ...] = ()
        cookie_lines = grouped.get("Cookie")
        if cookie_lines:
            if len(cookie_lines) > 1 and not version.startswith("1."):
                grouped["Cookie"] = [b"; ".join(cookie_lines)]
            cookies = tuple(parse_cookies(cookie_lines).items())

        remote_addr, method, uri, raw_query = _origin(scope, host)
        return cls(
            remote_addr,
            protocol,
            method,
            uri,
            tuple([(name, tuple(values)) for name, values in grouped.items()]),
            cookies,
            raw_query,
            parsed,
            uploads,
        )

    def encode(self, codec: ContextCodec) -> bytes:
        """Return the context bytes for the request frame."""
        if codec is ContextCodec.PROTO:
            return self.to_proto()
        return self.to_json()

    def to_proto(self) -> bytes:
        """Encode as ``http.v1.Request``; map entries are sorted by name."""
        return wire.encode_request(
            self.remote_addr,
            self.protocol,
            self.method,
            self.uri,
            [
                (name, wire.map_entry(wire.HEADER, name, values))
                for name, values in self.headers
            ],
            self.cookies,
            self.raw_query,
            self.parsed,
            self.uploads,
        )

    def to_json(self) -> bytes:
        """Encode as the legacy JSON object, keys in RoadRunner's order."""
        data: dict[str, Any] = {
            "remoteAddr": self.remote_addr,
            "protocol": self.protocol,
            "method": self.method,
            "uri": self.uri,
            "headers": {
                name: [_text(value) for value in values]
                for name, values in self.headers
            },
            "cookies": {name: _text(value) for name, value in self.cookies},
            "rawQuery": self.raw_query,
            "parsed": self.parsed,
            "uploads": None if self.uploads is None else json.loads(self.uploads),
            "attributes": {},
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def encode_request_context(
    scope: Scope,
    codec: ContextCodec,
    *,
    parsed: bool = False,
    uploads: bytes | None = None,
) -> bytes:
    """Return the encoded request context of an ASGI ``http`` scope.

    The same bytes as ``RequestContext.from_scope(...).encode(codec)``; for
    protobuf, made without the ``RequestContext`` in between, and with each
    header line's map entry remembered (see ``_known_lines``).
    """
    if codec is ContextCodec.PROTO:
        encoded = _encode_proto(scope, parsed, uploads)
        if encoded is not None:
            return encoded
    context = RequestContext.from_scope(scope, parsed=parsed, uploads=uploads)
    return context.encode(codec)


# Header lines seen lately, raw name and value -> the canonical name and
# the line's ``header`` map entry (None for Host and Transfer-Encoding,
# which Go keeps out of the map). A client sends the same lines with each
# request (its User-Agent, its Accept, the Host): each is canonicalized and
# encoded once. Emptied when full; long values (cookies, tokens) are made
# each time, as they seldom repeat.
_known_lines: dict[tuple[bytes, bytes], tuple[str, bytes | None]] = {}
_KNOWN_LINES_MAX = 1024
_KNOWN_VALUE_MAX = 256


def _encode_proto(scope: Scope, parsed: bool, uploads: bytes | None) -> bytes | None:
    """``http.v1.Request`` for ``scope``; None when ``RequestContext`` must
    make it (a header name that repeats, a protocol not in _PROTOCOLS)."""
    protocol = _PROTOCOLS.get(scope.get("http_version", "1.1"))
    if protocol is None:
        return None
    known = _known_lines
    headers: list[tuple[str, bytes]] = []
    names: set[str] = set()
    host = b""
    cookie = b""
    for line in scope.get("headers", ()):
        try:
            found = known.get(line)
        except TypeError:  # a list, or bytearrays: not hashable
            return None
        if found is None:
            found = _known_line(line)
        name, entry = found
        if name in names:
            return None  # several values: RequestContext groups them
        names.add(name)
        if entry is None:  # Host or Transfer-Encoding
            if name == "Host":
                host = bytes(line[1])
            continue
        headers.append((name, entry))
        if name == "Cookie":
            cookie = bytes(line[1])
    cookies = parse_cookies((cookie,)).items() if cookie else ()
    remote_addr, method, uri, raw_query = _origin(scope, host)
    return wire.encode_request(
        remote_addr,
        protocol,
        method,
        uri,
        headers,
        cookies,
        raw_query,
        parsed,
        uploads,
    )


def _known_line(line: tuple[bytes, bytes]) -> tuple[str, bytes | None]:
    """The canonical name and the map entry of a header line, remembered
    for a short value."""
    raw_name, value = bytes(line[0]), bytes(line[1])
    name = _canonical_bytes(raw_name)
    found = (
        name,
        None
        if name in _DROPPED_HEADERS
        else wire.map_entry(wire.HEADER, name, (value,)),
    )
    if len(value) <= _KNOWN_VALUE_MAX:
        if len(_known_lines) >= _KNOWN_LINES_MAX:
            _known_lines.clear()
        _known_lines[(raw_name, value)] = found
    return found


def _origin(scope: Scope, host: bytes) -> tuple[str, str, str, str]:
    """Who asked for what: the client's address, the method, the absolute
    URI (made with ``host``, the Host header) and the raw query."""
    client = scope.get("client")
    uri, raw_query = _target(scope, host)
    remote_addr = str(client[0]).strip("[]") if client and client[0] else ""
    return remote_addr, str(scope["method"]), uri, raw_query


def _target(scope: Scope, host: bytes) -> tuple[str, str]:
    """The request's absolute URI and its raw query, from ``Host``."""
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        raw_path = bytes(raw_path)
    query = bytes(scope.get("query_string", b""))
    # A fragment is the client's own business and is never sent; one
    # that is sent anyway is cut off here, or PHP's URI parser takes it
    # for one and the path it sees ends at the "#". (Go keeps it in the
    # path, as %23.) Servers split the target at "?" only, so the "#"
    # can be in the path, and then all of the query is in the fragment.
    if raw_path is not None and b"#" in raw_path:
        raw_path, query = raw_path.partition(b"#")[0], b""
    elif b"#" in query:
        query = query.partition(b"#")[0]
    uri = _uri(scope, _text(host.strip()), raw_path, query)
    return uri, _strip_crlf(_text(query)) if query else ""


def _uri(scope: Scope, host: str, raw_path: bytes | None, query: bytes) -> str:
    scheme = str(scope.get("scheme", "http"))
    if raw_path is not None:
        path = _escape_path(raw_path)
    else:
        path = quote(str(scope.get("path", "/")), safe=_PATH_SAFE_TEXT)

    if path[:8].lower().startswith(("http://", "https://")):
        # An absolute-form target names the host (RFC 9112 3.2.2), checked
        # by target_problem; the scheme is the connection's, so that a
        # plain request cannot pass itself off as HTTPS.
        authority, rest = _absolute_parts(path.encode("ascii", "replace"))
        uri = f"{scheme}://{authority.decode('ascii')}{rest.decode('ascii')}"
    else:
        if not host:
            server = scope.get("server")
            if server:
                host = _format_host(str(server[0]), server[1], scheme)
        if path == "*":
            # The asterisk-form (OPTIONS *) names the server, not one of
            # its resources: PHP gets the bare origin, "http://host", whose
            # path PSR-7 reads as "" (trio_runner's Request as "/"). Go's
            # "http://host*" would make "host*" the host.
            path = ""
        uri = f"{scheme}://{host}{path}"
    if query:
        uri = f"{uri}?{_text(query)}"
    return _strip_crlf(uri)


def target_problem(scope: Scope) -> str | None:
    """Return why the request's target URI cannot be built, or None.

    The URI PHP gets (``RequestContext.uri``) is made of the Host header and
    the request target, so both must be what they claim to be: at most one
    Host header, whose value, if not empty, is ``host[:port]`` (RFC 3986
    3.2.2, the port at most 65535); and a target that is a path starting
    with ``/``, an absolute ``http(s)://`` URI, or ``*`` without a query.
    A missing or empty Host is no problem here: the URI then names the
    server's own address (HTTP/1.1 servers refuse a request without Host).

    The answer is a phrase for a 400 response's text, naming no value from
    the request.
    """
    host = None
    for name, value in scope.get("headers", ()):
        # ASGI names are lower case; "Host" is caught too, as from_scope would.
        if len(name) == 4 and name.lower() == b"host":
            if host is not None:
                return "it has more than one Host header"
            host = bytes(value)
    if host and (problem := _authority_problem(host)):
        return f"the Host header {problem}"

    raw_path = scope.get("raw_path")
    if raw_path is None:
        target = str(scope.get("path", "/")).encode("utf-8", "surrogateescape")
    else:
        target = bytes(raw_path)
    if target[:1] == b"/":
        return None
    if target[:8].lower().startswith(_ABSOLUTE_FORM):
        if scope.get("http_version") == "2":
            return "an HTTP/2 :path must be a path (RFC 9113 8.3.1)"
        authority = _absolute_parts(target)[0]
        if not authority:
            return "the request target is an absolute URI without a host"
        if problem := _authority_problem(authority):
            return f"the request target's host {problem}"
        return None
    if target == b"*":
        if scope.get("method") != "OPTIONS":
            return "the request target * is for OPTIONS only"
        if scope.get("query_string"):
            return "the request target * has a query"
        return None
    return "the request target is not a path, an absolute URI or *"


# Authorities found valid lately: a client sends the same Host with each
# request, and checking it again is a regex match and maybe an IPv6 parse.
# Emptied when full, so a client sending many hosts costs no memory.
_VALID_HOSTS: set[bytes] = set()
_VALID_HOSTS_MAX = 256


def _authority_problem(authority: bytes) -> str | None:
    """Why ``authority`` is not ``host[:port]``, or None (it is)."""
    if authority in _VALID_HOSTS:
        return None
    match = _HOST.fullmatch(authority)
    if match is None:
        return "is not a valid host or host:port"
    address, port = match.groups()
    if port is not None and len(port) == 5 and port > b"65535":
        return "has a port past 65535"
    if address is not None and not _is_ipv6(address):
        return "has a malformed IPv6 address"
    if len(_VALID_HOSTS) >= _VALID_HOSTS_MAX:
        _VALID_HOSTS.clear()
    _VALID_HOSTS.add(bytes(authority))
    return None


def _absolute_parts(target: bytes) -> tuple[bytes, bytes]:
    """The authority of an absolute-form target and the rest after it."""
    rest = target.partition(b"://")[2]
    end = len(rest)
    for stop in (b"/", b"?"):
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    return rest[:end], rest[end:]


def _is_ipv6(address: bytes) -> bool:
    try:
        ipaddress.IPv6Address(address.decode("ascii"))
    except ValueError:
        return False
    return True

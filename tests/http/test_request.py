from __future__ import annotations

import json
import random

import pytest

from tests.http.fakes import http_scope
from tests.http.hosts import BAD_HOSTS, GOOD_HOSTS
from trio_runner.http import request as request_module
from trio_runner.http.asgi import Scope
from trio_runner.http.proto import http_pb2
from trio_runner.http.request import (
    ContextCodec,
    RequestContext,
    canonical_header_name,
    encode_request_context,
    parse_cookies,
    target_problem,
)


def proto(scope: Scope) -> http_pb2.Request:
    return http_pb2.Request.FromString(
        encode_request_context(scope, ContextCodec.PROTO)
    )


def as_json(scope: Scope) -> dict[str, object]:
    data = json.loads(encode_request_context(scope, ContextCodec.JSON))
    assert isinstance(data, dict)
    return data


def test_request_context_matches_golden_frame(
    golden_frames: dict[str, dict[str, object]],
) -> None:
    spec = golden_frames["g_http_request"]
    payload = bytes.fromhex(str(spec["payload"]))
    options = spec["options"]
    assert isinstance(options, list)
    scope = http_scope(
        "GET",
        "/",
        query=b"a=1",
        headers=[(b"host", b"localhost"), (b"accept", b"*/*")],
    )
    assert encode_request_context(scope, ContextCodec.PROTO) == payload[: options[0]]


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("x-foo-bar", "X-Foo-Bar"),
        ("CONTENT-TYPE", "Content-Type"),
        ("accept", "Accept"),
        ("x--double", "X--Double"),
        ("-leading", "-Leading"),
        ("www-authenticate", "Www-Authenticate"),
        ("x_under_score", "X_under_score"),
        ("x-1st", "X-1st"),
        ("with space", "with space"),  # not a token: Go leaves it alone
        ("caf\xe9", "caf\xe9"),
        ("", ""),
    ],
)
def test_canonical_header_name_follows_go(name: str, canonical: str) -> None:
    assert canonical_header_name(name) == canonical


def test_headers_are_canonical_repeated_in_order_without_host_and_te() -> None:
    scope = http_scope(
        headers=[
            (b"host", b"example.com"),
            (b"x-forwarded-for", b"1.1.1.1"),
            (b"transfer-encoding", b"chunked"),
            (b"accept", b"text/html"),
            (b"X-Forwarded-For", b"2.2.2.2"),
            (b"content-length", b"0"),
        ]
    )
    context = RequestContext.from_scope(scope)
    assert context.headers == (
        ("X-Forwarded-For", (b"1.1.1.1", b"2.2.2.2")),
        ("Accept", (b"text/html",)),
        ("Content-Length", (b"0",)),
    )
    message = proto(scope)
    assert set(message.header) == {"X-Forwarded-For", "Accept", "Content-Length"}
    assert list(message.header["X-Forwarded-For"].value) == [b"1.1.1.1", b"2.2.2.2"]
    assert as_json(scope)["headers"] == {
        "X-Forwarded-For": ["1.1.1.1", "2.2.2.2"],
        "Accept": ["text/html"],
        "Content-Length": ["0"],
    }


def test_header_bytes_that_are_not_utf8_reach_proto_untouched() -> None:
    scope = http_scope(
        headers=[(b"host", b"h"), (b"x-raw", b"caf\xe9\xff"), (b"x-utf8", "é".encode())]
    )
    assert list(proto(scope).header["X-Raw"].value) == [b"caf\xe9\xff"]
    headers = as_json(scope)["headers"]
    assert isinstance(headers, dict)
    # JSON: valid UTF-8 as is; anything else as Latin-1, one char per byte.
    assert headers["X-Raw"] == ["caf\xe9\xff"]
    assert headers["X-Utf8"] == ["é"]


_LINES = [
    (b"host", b"example.com:8080"),
    (b"Host", b"other"),
    (b"user-agent", b"Mozilla/5.0"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip"),
    (b"cookie", b"sid=a%20b; theme=dark; bad name=1"),
    (b"cookie", b"second=2"),
    (b"transfer-encoding", b"chunked"),
    (b"x-long", b"v" * 300),
    (b"x-raw", b"caf\xe9\xff"),
    (b"content-type", b"application/json"),
    (b"x-trace", b"00-abc"),
]


@pytest.mark.parametrize("http_version", ["1.1", "2", "1.0", "9"])
def test_proto_context_of_a_scope_is_the_request_contexts_every_time(
    http_version: str,
) -> None:
    # encode_request_context skips RequestContext, remembering header
    # lines; whatever the lines (repeated names, cookies, Host, long or
    # raw values), its bytes are those of RequestContext, again and again.
    rng = random.Random(http_version)
    for _ in range(300):
        lines = rng.sample(_LINES, rng.randint(0, 6))
        scope = http_scope(
            rng.choice(["GET", "POST"]),
            rng.choice(["/", "/a b", "/p#frag", "*"]),
            query=rng.choice([b"", b"q=1", b"a=%ZZ#x"]),
            headers=lines,
            http_version=http_version,
            client=rng.choice([("::1", 1), None, ("10.0.0.1", 2)]),
        )
        if rng.random() < 0.1:  # pairs as lists: nothing to remember by
            scope["headers"] = [list(line) for line in lines]
        expected = RequestContext.from_scope(scope, parsed=True, uploads=b"{}")
        for _ in range(2):
            encoded = encode_request_context(
                scope, ContextCodec.PROTO, parsed=True, uploads=b"{}"
            )
            assert encoded == expected.to_proto()


def test_remembered_header_lines_are_short_and_bounded() -> None:
    encode_request_context(
        http_scope(headers=[(b"x-long", b"v" * 300), (b"x-short", b"v")]),
        ContextCodec.PROTO,
    )
    assert (b"x-short", b"v") in request_module._known_lines
    assert (b"x-long", b"v" * 300) not in request_module._known_lines
    for number in range(2 * request_module._KNOWN_LINES_MAX):
        scope = http_scope(headers=[(b"x-request-id", b"%d" % number)])
        encode_request_context(scope, ContextCodec.PROTO)
        assert len(request_module._known_lines) <= request_module._KNOWN_LINES_MAX


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([b"name=%A7; ok=1"], {"name": b"\xa7", "ok": b"1"}),
        ([b"a=b+c%20d"], {"a": b"b c d"}),
        ([b"a=%2B"], {"a": b"+"}),
        ([b'q="quoted"'], {"q": b"quoted"}),
        ([b"bad=%zz; good=1"], {"good": b"1"}),
        ([b"bad=%4; good=1"], {"good": b"1"}),
        ([b"bad=a\\b; good=1"], {"good": b"1"}),
        ([b'bad=a"b; good=1'], {"good": b"1"}),
        ([b"bad=caf\xe9; good=1"], {"good": b"1"}),
        ([b"na me=1; good=1"], {"good": b"1"}),
        ([b"=1; ; good=1;"], {"good": b"1"}),
        ([b"flag"], {"flag": b""}),
        ([b"a=1; a=2"], {"a": b"2"}),
        ([b"a=1", b"b=2"], {"a": b"1", "b": b"2"}),
        ([b"  spaced = 1 "], {"spaced": b" 1"}),
    ],
)
def test_parse_cookies_unescapes_and_drops_bad_ones(
    lines: list[bytes], expected: dict[str, bytes]
) -> None:
    assert parse_cookies(lines) == expected


def test_cookies_in_proto_keep_bytes_and_in_json_fall_back_to_latin1() -> None:
    scope = http_scope(headers=[(b"host", b"h"), (b"cookie", b"name=%A7; ok=1")])
    message = proto(scope)
    assert list(message.cookies["name"].value) == [b"\xa7"]
    assert list(message.cookies["ok"].value) == [b"1"]
    assert list(message.header["Cookie"].value) == [b"name=%A7; ok=1"]
    assert as_json(scope)["cookies"] == {"name": "\xa7", "ok": "1"}


@pytest.mark.parametrize(
    ("http_version", "cookie_header"),
    [
        ("1.1", [b"a=1", b"b=2"]),
        ("2", [b"a=1; b=2"]),
        ("3", [b"a=1; b=2"]),
    ],
)
def test_cookie_headers_are_joined_over_http2_as_go_does(
    http_version: str, cookie_header: list[bytes]
) -> None:
    scope = http_scope(
        headers=[(b"host", b"h"), (b"cookie", b"a=1"), (b"cookie", b"b=2")],
        http_version=http_version,
    )
    context = RequestContext.from_scope(scope)
    assert dict(context.headers)["Cookie"] == tuple(cookie_header)
    assert dict(context.cookies) == {"a": b"1", "b": b"2"}


@pytest.mark.parametrize(
    ("client", "remote_addr"),
    [
        (("127.0.0.1", 5000), "127.0.0.1"),
        (("::1", 5000), "::1"),
        (("[2001:db8::1]", 5000), "2001:db8::1"),
        (("fe80::1%eth0", 5000), "fe80::1%eth0"),
        (None, ""),
        (("", 0), ""),
    ],
)
def test_remote_addr_has_no_port_and_no_brackets(
    client: tuple[str, int] | None, remote_addr: str
) -> None:
    assert (
        RequestContext.from_scope(http_scope(client=client)).remote_addr == remote_addr
    )


@pytest.mark.parametrize(
    ("http_version", "protocol"),
    [("1.0", "HTTP/1.0"), ("1.1", "HTTP/1.1"), ("2", "HTTP/2.0"), ("3", "HTTP/3.0")],
)
def test_protocol_is_gos_proto_string(http_version: str, protocol: str) -> None:
    scope = http_scope(http_version=http_version)
    assert RequestContext.from_scope(scope).protocol == protocol


@pytest.mark.parametrize(
    ("options", "uri"),
    [
        ({}, "http://localhost/"),
        ({"path": "/a/b", "query": b"x=1&y=2"}, "http://localhost/a/b?x=1&y=2"),
        ({"headers": [(b"host", b"example.com:8080")]}, "http://example.com:8080/"),
        ({"scheme": "https", "path": "/s"}, "https://localhost/s"),
        (
            {"headers": [(b"host", b"[::1]:8443")], "scheme": "https"},
            "https://[::1]:8443/",
        ),
        # no Host header: the server address, default ports left out
        ({"headers": [], "server": ("10.0.0.1", 80)}, "http://10.0.0.1/"),
        ({"headers": [], "server": ("10.0.0.1", 8080)}, "http://10.0.0.1:8080/"),
        (
            {"headers": [], "scheme": "https", "server": ("::1", 443)},
            "https://[::1]/",
        ),
        ({"headers": [], "server": None}, "http:///"),
        # the raw path is kept as sent, bytes outside ASCII are escaped
        ({"path": "/a b", "raw_path": b"/a%20b%2F"}, "http://localhost/a%20b%2F"),
        (
            {"path": "/caf\xe9", "raw_path": b"/caf\xc3\xa9"},
            "http://localhost/caf%C3%A9",
        ),
        # an absolute-form request-target is used as it is
        (
            {"raw_path": b"http://other.example/x", "query": b"q=1"},
            "http://other.example/x?q=1",
        ),
        # CR and LF never reach PHP
        ({"headers": [(b"host", b"evil\r\nX: y")]}, "http://evilX: y/"),
        ({"query": b"a=1\r\nb"}, "http://localhost/?a=1b"),
    ],
)
def test_uri_is_absolute(options: dict[str, object], uri: str) -> None:
    scope = http_scope(**options)  # type: ignore[arg-type]
    assert RequestContext.from_scope(scope).uri == uri


def test_uri_without_raw_path_quotes_the_decoded_path() -> None:
    scope = http_scope(path="/a b/caf\xe9%")
    del scope["raw_path"]
    assert RequestContext.from_scope(scope).uri == "http://localhost/a%20b/caf%C3%A9%25"


def test_raw_query_is_unchanged_but_for_cr_lf() -> None:
    scope = http_scope(query=b"a=%20b&c[]=1&d\r\n=2")
    context = RequestContext.from_scope(scope)
    assert context.raw_query == "a=%20b&c[]=1&d=2"
    assert proto(scope).raw_query == "a=%20b&c[]=1&d=2"


def test_json_context_has_every_legacy_key_in_order() -> None:
    scope = http_scope(
        "POST",
        "/p",
        query=b"x=1",
        headers=[(b"host", b"h:81"), (b"cookie", b"c=v")],
        client=("10.1.2.3", 999),
    )
    raw = encode_request_context(scope, ContextCodec.JSON)
    data = json.loads(raw)
    assert list(data) == [
        "remoteAddr",
        "protocol",
        "method",
        "uri",
        "headers",
        "cookies",
        "rawQuery",
        "parsed",
        "uploads",
        "attributes",
    ]
    assert data == {
        "remoteAddr": "10.1.2.3",
        "protocol": "HTTP/1.1",
        "method": "POST",
        "uri": "http://h:81/p?x=1",
        "headers": {"Cookie": ["c=v"]},
        "cookies": {"c": "v"},
        "rawQuery": "x=1",
        "parsed": False,
        "uploads": None,
        "attributes": {},
    }
    assert raw.startswith(b"{")  # PHP sniffs the codec with json_validate()


def test_proto_context_leaves_parsed_and_uploads_unset() -> None:
    message = proto(http_scope("POST"))
    assert not message.parsed
    assert message.uploads == b""
    assert not message.attributes


def test_context_carries_parsed_and_the_uploads_tree_in_both_codecs() -> None:
    tree = b'{"f":{"name":"a.txt","error":0}}'
    context = RequestContext.from_scope(http_scope("POST"), parsed=True, uploads=tree)
    message = http_pb2.Request.FromString(context.encode(ContextCodec.PROTO))
    assert message.parsed
    assert message.uploads == tree
    data = json.loads(context.encode(ContextCodec.JSON))
    assert data["parsed"] is True
    assert data["uploads"] == {"f": {"name": "a.txt", "error": 0}}


def test_context_of_a_multipart_form_without_files_sends_an_empty_tree() -> None:
    context = RequestContext.from_scope(http_scope("POST"), parsed=True, uploads=b"{}")
    assert http_pb2.Request.FromString(context.to_proto()).uploads == b"{}"
    assert json.loads(context.to_json())["uploads"] == {}


def test_codec_flags() -> None:
    assert ContextCodec.PROTO.flag == 0x80
    assert ContextCodec.JSON.flag == 0x08


@pytest.mark.parametrize("host", GOOD_HOSTS)
def test_target_problem_passes_a_valid_host(host: bytes) -> None:
    assert target_problem(http_scope(headers=[(b"host", host)])) is None


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_target_problem_names_a_malformed_host(host: bytes) -> None:
    problem = target_problem(http_scope(headers=[(b"host", host)]))
    assert problem is not None
    assert "Host header" in problem


def test_target_problem_remembers_valid_hosts_only_and_boundedly() -> None:
    for host in GOOD_HOSTS:
        assert target_problem(http_scope(headers=[(b"host", host)])) is None
    for host in BAD_HOSTS:
        # Twice: a refused host is never taken for one seen before.
        for _ in range(2):
            assert target_problem(http_scope(headers=[(b"host", host)])) is not None
        assert host not in request_module._VALID_HOSTS
    for number in range(3 * request_module._VALID_HOSTS_MAX):
        host = b"h%d.example:%d" % (number, 1000 + number)
        assert target_problem(http_scope(headers=[(b"host", host)])) is None
        assert len(request_module._VALID_HOSTS) <= request_module._VALID_HOSTS_MAX


@pytest.mark.parametrize("http_version", ["1.0", "1.1", "2"])
def test_target_problem_refuses_two_host_headers(http_version: str) -> None:
    headers = [(b"host", b"a.example"), (b"accept", b"*/*"), (b"Host", b"a.example")]
    scope = http_scope(headers=headers, http_version=http_version)
    assert target_problem(scope) == "it has more than one Host header"


def test_target_problem_lets_a_request_without_host_through() -> None:
    # The HTTP/1.1 servers refuse it before the app; HTTP/1.0 may omit it.
    assert target_problem(http_scope(headers=[], http_version="1.0")) is None


@pytest.mark.parametrize(
    ("method", "raw_path", "query", "refused"),
    [
        ("GET", b"/", b"", False),
        ("GET", b"/a#frag", b"", False),
        ("OPTIONS", b"*", b"", False),
        ("GET", b"http://other.example/x", b"", False),
        ("GET", b"HTTPS://other.example/x", b"q=1", False),
        ("GET", b"http://other.example", b"", False),
        ("GET", b"http://[::1]:8080/x", b"", False),
        ("OPTIONS", b"*", b"q=1", True),
        ("GET", b"*", b"", True),  # the asterisk-form is OPTIONS's only
        ("GET", b"*.evil.example/x", b"", True),
        ("GET", b"evil.example/x", b"", True),
        ("GET", b"@evil.example/", b"", True),
        ("GET", b"", b"", True),
        # Absolute-form targets name the host: checked as a Host header is
        # (bug report: "http://[::1/x" moved the path PSR-7 saw).
        ("GET", b"http://[::1/x", b"", True),
        ("GET", b"http://u:p@evil/x", b"", True),
        ("GET", b"http://evil:99999/x", b"", True),
        ("GET", b"http:///x", b"", True),
        ("GET", b"http://a\\b/x", b"", True),
    ],
)
def test_target_problem_wants_a_path_an_absolute_uri_or_asterisk(
    method: str, raw_path: bytes, query: bytes, refused: bool
) -> None:
    # A target without its leading "/" would run on into the host:
    # "http://localhost" + "@evil.example/" names another server.
    scope = http_scope(method, raw_path=raw_path, query=query)
    problem = target_problem(scope)
    assert (problem is not None) is refused, problem


def test_target_problem_refuses_an_absolute_uri_as_http2_path() -> None:
    scope = http_scope(raw_path=b"http://evil/x", http_version="2")
    assert target_problem(scope) == "an HTTP/2 :path must be a path (RFC 9113 8.3.1)"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_uri_of_an_absolute_target_keeps_the_connection_s_scheme(scheme: str) -> None:
    # Bug report: "GET https://h/x" over plain HTTP gave PHP an https URI,
    # and PSR-7 bridges then set $_SERVER["HTTPS"] = "on".
    for target in (b"https://h/x", b"http://h/x"):
        scope = http_scope(raw_path=target, path=target.decode(), scheme=scheme)
        assert RequestContext.from_scope(scope).uri == f"{scheme}://h/x"


def test_target_problem_checks_the_decoded_path_without_raw_path() -> None:
    scope = http_scope(path="evil.example/x")
    del scope["raw_path"]
    assert target_problem(scope) is not None
    scope["path"] = "/caf\xe9"
    assert target_problem(scope) is None


@pytest.mark.parametrize(
    ("raw_path", "query", "uri", "raw_query"),
    [
        (b"/a#frag", b"", "http://localhost/a", ""),
        # the servers split at "?" only: here all of it is the fragment
        (b"/a#frag", b"b=1", "http://localhost/a", ""),
        (b"/a", b"b=1#frag", "http://localhost/a?b=1", "b=1"),
        (b"/a%23b", b"c=%23", "http://localhost/a%23b?c=%23", "c=%23"),
        (b"http://other.example/x#f", b"", "http://other.example/x", ""),
    ],
)
def test_uri_leaves_out_a_fragment(
    raw_path: bytes, query: bytes, uri: str, raw_query: str
) -> None:
    context = RequestContext.from_scope(http_scope(raw_path=raw_path, query=query))
    assert (context.uri, context.raw_query) == (uri, raw_query)


@pytest.mark.parametrize(
    ("options", "uri"),
    [
        ({}, "http://localhost"),
        ({"headers": [(b"host", b"h:8080")]}, "http://h:8080"),
        ({"headers": [], "server": ("10.0.0.1", 8080)}, "http://10.0.0.1:8080"),
    ],
)
def test_uri_of_the_asterisk_form_is_the_bare_origin(
    options: dict[str, object], uri: str
) -> None:
    scope = http_scope("OPTIONS", "*", **options)  # type: ignore[arg-type]
    assert RequestContext.from_scope(scope).uri == uri

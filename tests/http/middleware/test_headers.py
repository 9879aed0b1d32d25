from __future__ import annotations

from typing import Any

import pytest

from tests.http.middleware.apps import Answer, call, http_scope
from trio_runner.config.model import CorsConfig, HeadersConfig
from trio_runner.errors import ConfigError
from trio_runner.http.middleware.cors import CorsPolicy
from trio_runner.http.middleware.headers import HeadersMiddleware

APP = "https://app.example"
EVIL = "https://evil.example"


def cors(**settings: Any) -> CorsPolicy:
    return CorsPolicy.from_config(CorsConfig(**settings))


def preflight(
    origin: str | None = APP, method: str = "PUT", headers: str | None = None
) -> list[tuple[bytes, bytes]]:
    lines = [(b"host", b"api.example")]
    if origin is not None:
        lines.append((b"origin", origin.encode()))
    lines.append((b"access-control-request-method", method.encode()))
    if headers is not None:
        lines.append((b"access-control-request-headers", headers.encode()))
    return lines


def as_dict(lines: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    assert len({name for name, _ in lines}) == len(lines), lines
    return dict(lines)


# (settings, origin, allowed?)
ORIGIN_CASES = [
    ({"allowed_origin": "*"}, APP, True),
    ({"allowed_origin": "*"}, "null", True),
    ({"allowed_origin": APP}, APP, True),
    ({"allowed_origin": APP}, APP.upper(), True),
    ({"allowed_origin": APP}, EVIL, False),
    ({"allowed_origin": APP}, APP + ".evil.example", False),
    ({"allowed_origin": f"{EVIL}, {APP}"}, APP, True),
    ({"allowed_origin": f" {APP} ,{EVIL}"}, EVIL, True),
    ({"allowed_origin": "https://*.example.com"}, "https://a.example.com", True),
    ({"allowed_origin": "https://*.example.com"}, "https://example.com", False),
    ({"allowed_origin": "https://*.example.com"}, "http://a.example.com", False),
    ({"allowed_origin": "https://*.example.com"}, "https://a.example.com.evil", False),
    ({"allowed_origin_regex": r"^https://(a|b)\.example$"}, "https://b.example", True),
    ({"allowed_origin_regex": r"^https://(a|b)\.example$"}, "https://c.example", False),
    ({"allowed_origin_regex": r"^https://a\.", "allowed_origin": "*"}, EVIL, False),
    ({"allowed_origin": ""}, APP, False),
]


@pytest.mark.parametrize(("settings", "origin", "allowed"), ORIGIN_CASES)
def test_cors_policy_allows_origins(
    settings: dict[str, Any], origin: str, allowed: bool
) -> None:
    assert cors(**settings).allows_origin(origin) is allowed


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"allowed_origin_regex": "(unclosed"}, "allowed_origin_regex"),
        ({"allowed_origin": "https://*.*.example"}, "one \\* wildcard"),
    ],
)
def test_cors_policy_refuses_unusable_settings(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        cors(**settings)


# (settings, request lines, expected CORS lines of the preflight answer)
PREFLIGHT_CASES = [
    pytest.param(
        {"allowed_origin": "*", "allowed_methods": "GET, PUT"},
        preflight(),
        {
            b"access-control-allow-origin": b"*",
            b"access-control-allow-methods": b"GET, PUT",
        },
        id="any origin",
    ),
    pytest.param(
        {"allowed_origin": "*", "allow_credentials": True, "allowed_methods": "PUT"},
        preflight(),
        {
            b"access-control-allow-origin": APP.encode(),
            b"access-control-allow-credentials": b"true",
            b"access-control-allow-methods": b"PUT",
        },
        id="credentials echo the origin, never *",
    ),
    pytest.param(
        {"allowed_origin": APP, "allowed_methods": "PUT", "max_age": 600},
        preflight(),
        {
            b"access-control-allow-origin": APP.encode(),
            b"access-control-allow-methods": b"PUT",
            b"access-control-max-age": b"600",
        },
        id="listed origin and max_age",
    ),
    pytest.param(
        {"allowed_origin": APP, "allowed_methods": "PUT"},
        preflight(EVIL),
        {},
        id="origin not allowed",
    ),
    pytest.param(
        {"allowed_origin": APP, "allowed_methods": "PUT"},
        preflight(method="DELETE"),
        {},
        id="method not allowed",
    ),
    pytest.param(
        {"allowed_origin": APP},
        preflight(method="POST"),
        {
            b"access-control-allow-origin": APP.encode(),
            b"access-control-allow-methods": b"GET, HEAD, POST",
        },
        id="simple methods by default",
    ),
    pytest.param(
        {"allowed_origin": APP, "allowed_methods": "*"},
        preflight(method="PATCH"),
        {
            b"access-control-allow-origin": APP.encode(),
            b"access-control-allow-methods": b"PATCH",
        },
        id="any method echoes the one asked for",
    ),
    pytest.param(
        {
            "allowed_origin": APP,
            "allowed_methods": "PUT",
            "allowed_headers": "X-Token, Content-Type",
        },
        preflight(headers="content-type,x-token"),
        {
            b"access-control-allow-origin": APP.encode(),
            b"access-control-allow-methods": b"PUT",
            b"access-control-allow-headers": b"content-type, x-token",
        },
        id="listed headers",
    ),
    pytest.param(
        {"allowed_origin": APP, "allowed_methods": "PUT", "allowed_headers": "X-A"},
        preflight(headers="x-a, x-b"),
        {},
        id="a header not allowed",
    ),
    pytest.param(
        {"allowed_origin": APP, "allowed_methods": "PUT", "allowed_headers": "*"},
        preflight(headers="x-anything"),
        {
            b"access-control-allow-origin": APP.encode(),
            b"access-control-allow-methods": b"PUT",
            b"access-control-allow-headers": b"x-anything",
        },
        id="any header",
    ),
    pytest.param(
        {"allowed_origin": APP, "allowed_methods": "PUT"},
        preflight(headers="x-custom"),
        {},
        id="default headers do not include custom ones",
    ),
]


@pytest.mark.parametrize(("settings", "request_lines", "expected"), PREFLIGHT_CASES)
async def test_headers_middleware_answers_preflight_without_the_app(
    settings: dict[str, Any],
    request_lines: list[tuple[bytes, bytes]],
    expected: dict[bytes, bytes],
) -> None:
    app = Answer()
    middleware = HeadersMiddleware(app, cors=cors(**settings))
    reply = await call(middleware, http_scope("OPTIONS", headers=request_lines))

    assert not app.called
    assert reply.status == 200
    assert reply.body == b""
    lines = as_dict(reply.headers)
    assert lines.pop(b"vary") == (
        b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    )
    assert lines.pop(b"content-length") == b"0"
    assert lines == expected


async def test_headers_middleware_preflight_uses_options_success_status() -> None:
    middleware = HeadersMiddleware(
        Answer(), cors=cors(allowed_origin="*", options_success_status=204)
    )
    reply = await call(middleware, http_scope("OPTIONS", headers=preflight()))
    assert reply.status == 204


@pytest.mark.parametrize(
    "request_lines",
    [
        [(b"origin", APP.encode())],  # no Access-Control-Request-Method
        [(b"access-control-request-method", b"PUT")],  # no Origin
    ],
)
async def test_headers_middleware_passes_plain_options_to_the_app(
    request_lines: list[tuple[bytes, bytes]],
) -> None:
    app = Answer()
    reply = await call(
        HeadersMiddleware(app, cors=cors(allowed_origin="*")),
        http_scope("OPTIONS", headers=request_lines),
    )
    assert app.called
    assert reply.body == b"from the app"


# (settings, origin sent, expected CORS lines on the app's response)
ACTUAL_CASES = [
    pytest.param(
        {"allowed_origin": "*"},
        APP,
        {b"access-control-allow-origin": b"*"},
        id="any origin",
    ),
    pytest.param(
        {
            "allowed_origin": APP,
            "allow_credentials": True,
            "exposed_headers": "X-A,X-B",
        },
        APP,
        {
            b"access-control-allow-origin": APP.encode(),
            b"access-control-allow-credentials": b"true",
            b"access-control-expose-headers": b"X-A, X-B",
        },
        id="credentials and exposed headers",
    ),
    pytest.param({"allowed_origin": APP}, EVIL, {}, id="origin not allowed"),
    pytest.param({"allowed_origin": "*"}, None, {}, id="no origin: not CORS"),
]


@pytest.mark.parametrize(("settings", "origin", "expected"), ACTUAL_CASES)
async def test_headers_middleware_adds_cors_to_the_apps_response(
    settings: dict[str, Any], origin: str | None, expected: dict[bytes, bytes]
) -> None:
    app = Answer(
        headers=[
            (b"content-type", b"text/plain"),
            (b"access-control-allow-origin", b"https://php.decided"),
            (b"vary", b"Cookie"),
        ]
    )
    request_lines = [(b"origin", origin.encode())] if origin else []
    reply = await call(
        HeadersMiddleware(app, cors=cors(**settings)),
        http_scope("POST", headers=request_lines),
    )
    assert app.called
    lines = as_dict(reply.headers)
    assert lines.pop(b"content-type") == b"text/plain"
    assert lines.pop(b"vary") == b"Cookie, Origin"
    assert lines == expected  # the app's own CORS header is gone either way


async def test_headers_middleware_sets_request_and_response_headers() -> None:
    app = Answer(headers=[(b"content-type", b"text/plain"), (b"X-Powered-By", b"PHP")])
    middleware = HeadersMiddleware.from_config(
        app,
        HeadersConfig(
            request={"X-Backend": "trio", "X-Forwarded-User": "nobody"},
            response={"X-Powered-By": "trio_runner", "X-Frame-Options": "DENY"},
        ),
    )
    scope = http_scope(
        headers=[(b"host", b"h"), (b"x-forwarded-user", b"admin"), (b"accept", b"*/*")]
    )
    reply = await call(middleware, scope)

    assert app.scope["headers"] == [
        (b"host", b"h"),
        (b"accept", b"*/*"),
        (b"x-backend", b"trio"),
        (b"x-forwarded-user", b"nobody"),  # the client's value is replaced
    ]
    assert scope["headers"][1] == (b"x-forwarded-user", b"admin")  # not mutated
    assert reply.headers == [
        (b"content-type", b"text/plain"),
        (b"x-powered-by", b"trio_runner"),
        (b"x-frame-options", b"DENY"),
    ]


async def test_headers_middleware_preflight_gets_response_headers_too() -> None:
    middleware = HeadersMiddleware.from_config(
        Answer(),
        HeadersConfig(
            response={"X-Frame-Options": "DENY"},
            cors=CorsConfig(allowed_origin="*"),
        ),
    )
    reply = await call(middleware, http_scope("OPTIONS", headers=preflight()))
    assert reply.header(b"x-frame-options") == [b"DENY"]


async def test_headers_middleware_passes_other_scopes() -> None:
    app = Answer()
    scope = {"type": "lifespan"}
    middleware = HeadersMiddleware(app, request=[(b"x-a", b"1")])
    await middleware(scope, _never, _nowhere)
    assert app.scope is scope


async def _never() -> dict[str, object]:
    raise AssertionError("not received")


async def _nowhere(message: object) -> None:
    pass


async def test_headers_middleware_sends_configured_values_as_utf8() -> None:
    middleware = HeadersMiddleware.from_config(
        Answer(), HeadersConfig(response={"X-Note": "café"})
    )
    reply = await call(middleware, http_scope())
    assert reply.header(b"x-note") == ["café".encode()]

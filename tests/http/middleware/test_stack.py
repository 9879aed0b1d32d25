from __future__ import annotations

import gzip
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.http.middleware.apps import Answer, call, http_scope
from trio_runner.config.model import (
    CorsConfig,
    HeadersConfig,
    HttpConfig,
    StaticConfig,
)
from trio_runner.errors import ConfigError
from trio_runner.http.access import ACCESS_LOGGER
from trio_runner.http.asgi import DISCONNECT_EXTENSION
from trio_runner.http.middleware import build_app

TEXT = b"static text, long enough to be worth compressing. " * 50


@pytest.fixture
def public(tmp_path: Path) -> Path:
    (tmp_path / "site.css").write_bytes(TEXT)
    return tmp_path


def http_config(*middleware: str, **sections: object) -> HttpConfig:
    return HttpConfig(
        middleware=middleware,
        static=StaticConfig(dir=".", forbid=[".php"]),
        headers=HeadersConfig(response={"X-Powered-By": "trio_runner"}),
        **sections,  # type: ignore[arg-type]
    )


def php_answer() -> Answer:
    return Answer(200, [(b"content-type", b"text/html")], [TEXT])


def request(path: str) -> dict:  # type: ignore[type-arg]
    return http_scope(path=path, headers=[(b"accept-encoding", b"gzip")])


@pytest.mark.parametrize(
    ("middleware", "static_gzipped", "static_has_header"),
    [
        (("gzip", "static"), True, False),
        (("static", "gzip"), False, False),
        (("headers", "static"), False, True),
        (("static", "headers"), False, False),
        (("headers", "gzip", "static"), True, True),
    ],
)
async def test_build_app_first_listed_middleware_sees_the_request_first(
    public: Path,
    middleware: tuple[str, ...],
    static_gzipped: bool,
    static_has_header: bool,
) -> None:
    php = php_answer()
    app = build_app(php, http_config(*middleware), working_dir=public)

    reply = await call(app, request("/site.css"))
    assert not php.called
    assert (reply.header(b"content-encoding") == [b"gzip"]) is static_gzipped
    body = gzip.decompress(reply.body) if static_gzipped else reply.body
    assert body == TEXT
    assert (reply.header(b"x-powered-by") == [b"trio_runner"]) is static_has_header

    # What static does not serve reaches PHP through every layer.
    reply = await call(app, request("/page"))
    assert php.called
    assert (reply.header(b"content-encoding") == [b"gzip"]) is ("gzip" in middleware)
    assert (reply.header(b"x-powered-by") == [b"trio_runner"]) is (
        "headers" in middleware
    )


async def test_build_app_without_middleware_still_trusts_proxies(public: Path) -> None:
    php = php_answer()
    app = build_app(php, HttpConfig(), working_dir=public)
    scope = http_scope(
        headers=[(b"x-forwarded-for", b"198.51.100.7")], client=("127.0.0.1", 4000)
    )
    await call(app, scope)
    assert php.scope["client"] == ("198.51.100.7", 0)


async def test_build_app_with_no_trusted_subnets_believes_no_header(
    public: Path,
) -> None:
    php = php_answer()
    app = build_app(php, HttpConfig(trusted_subnets=[]), working_dir=public)
    scope = http_scope(
        headers=[(b"x-forwarded-for", b"198.51.100.7")], client=("127.0.0.1", 4000)
    )
    await call(app, scope)
    assert php.scope["client"] == ("127.0.0.1", 4000)


async def test_build_app_adds_a_date_where_missing(public: Path) -> None:
    app = build_app(
        php_answer(), http_config("static"), working_dir=public, date_header=True
    )
    reply = await call(app, request("/site.css"))
    [date] = reply.header(b"date")
    assert date.endswith(b" GMT")

    dated = Answer(headers=[(b"date", b"Tue, 01 Jan 2030 00:00:00 GMT")])
    app = build_app(dated, HttpConfig(), working_dir=public, date_header=True)
    reply = await call(app, request("/"))
    assert reply.header(b"date") == [b"Tue, 01 Jan 2030 00:00:00 GMT"]


async def test_build_app_logs_middleware_answers_with_the_real_client(
    public: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = HttpConfig(
        middleware=("headers", "static"),
        access_logs=True,
        static=StaticConfig(dir=".", forbid=[".php"]),
        headers=HeadersConfig(cors=CorsConfig(allowed_origin="*")),
    )
    app = build_app(php_answer(), config, working_dir=public)
    proxied = [(b"x-real-ip", b"198.51.100.7")]
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        await call(app, http_scope(path="/site.css", headers=proxied))
        await call(
            app,
            http_scope(
                "OPTIONS",
                headers=[
                    *proxied,
                    (b"origin", b"https://a.example"),
                    (b"access-control-request-method", b"PUT"),
                ],
            ),
        )
    records: list[Any] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(r.method, r.URI, r.status, r.remote_address) for r in records] == [
        ("GET", "/site.css", 200, "198.51.100.7"),
        ("OPTIONS", "/", 200, "198.51.100.7"),
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            HttpConfig(middleware=("static",), static=StaticConfig(dir="missing")),
            "http.static.dir",
        ),
        (
            HttpConfig(
                middleware=("headers",),
                headers=HeadersConfig(cors=CorsConfig(allowed_origin_regex="(")),
            ),
            "allowed_origin_regex",
        ),
    ],
)
def test_build_app_refuses_unusable_settings(
    tmp_path: Path, config: HttpConfig, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_app(php_answer(), config, working_dir=tmp_path)


def test_build_app_ignores_sections_of_middleware_not_listed(tmp_path: Path) -> None:
    config = HttpConfig(static=StaticConfig(dir="missing"))
    assert build_app(php_answer(), config, working_dir=tmp_path) is not None


async def test_build_app_logs_499_when_the_lean_server_cancels_for_a_leaving_client(
    public: Path, caplog: pytest.LogCaptureFixture, autojump_clock: object
) -> None:
    # The lean server cancels the call of an app that asked it to (the
    # bridge does) once the client leaves: the access log, which wraps the
    # whole stack, says 499 then, and 500 for a call cancelled otherwise.
    gone: list[Callable[[], object]] = []

    def subscribe(callback: Callable[[], object], cancel: bool = False) -> None:
        gone.append(callback)

    async def waits(scope: Any, receive: Any, send: Any) -> None:
        await trio.sleep_forever()

    app = build_app(waits, HttpConfig(access_logs=True), working_dir=public)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        pass

    scope = http_scope()
    scope["extensions"] = {DISCONNECT_EXTENSION: {"subscribe": subscribe}}
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        with trio.move_on_after(1):  # the server's cancellation
            async with trio.open_nursery() as nursery:
                nursery.start_soon(app, scope, receive, send)
                await trio.sleep(0.5)
                for callback in gone:
                    callback()  # the client left
        with trio.move_on_after(1):  # a stop: the client did not leave
            await app(http_scope(), receive, send)
    statuses = [r.status for r in caplog.records if r.name == ACCESS_LOGGER]
    assert statuses == [499, 500]

"""The ceiling of the benchmark: an ASGI hello world on the lean server.

No PHP, no bridge: what trio_runner's HTTP/1.1 server does per request on
its own. Prints ``serving on http://...`` once it listens.
"""

from __future__ import annotations

import sys
from functools import partial

import trio

from trio_runner.http.asgi import Receive, Scope, Send
from trio_runner.http.h1 import serve_h1

_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def main(address: str) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(serve_h1, hello, address))
        print(f"serving on http://{bound}", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0")

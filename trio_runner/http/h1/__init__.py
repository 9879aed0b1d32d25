"""The lean HTTP/1.1 server: httptools parsing, one task pair per connection.

``serve_h1`` serves any ASGI app on plain TCP; ``H1Limits`` holds its head
size limit and deadlines. Modules: ``parser`` (bytes to requests, sans-I/O),
``framing`` (a response to bytes, sans-I/O), ``connection`` (one client
connection's I/O), ``websocket`` (upgrades, refused for now), ``lifespan``
and ``server`` (the accept loop).
"""

from __future__ import annotations

from trio_runner.http.h1.connection import H1Connection, H1Limits
from trio_runner.http.h1.server import serve_h1

__all__ = [
    "H1Connection",
    "H1Limits",
    "serve_h1",
]

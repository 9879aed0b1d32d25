"""The HTTP front: an ASGI app that runs each request on a PHP worker.

``HttpBridge`` is the app; ``serve_h1`` serves it (or any ASGI app) over
plain HTTP/1.1 with the lean server, ``serve_http`` with hypercorn's trio
worker (TLS, HTTP/2). ``RequestContext`` and ``decode_response_context``
are the request and response mappings of PROTOCOL.md section 4, without I/O;
``UploadOptions`` says where the bridge puts uploaded files.
"""

from __future__ import annotations

from trio_runner.http.bridge import Exchanger, HttpBridge, HttpOptions
from trio_runner.http.h1 import H1Limits, serve_h1
from trio_runner.http.request import (
    ContextCodec,
    RequestContext,
    canonical_header_name,
    encode_request_context,
    parse_cookies,
)
from trio_runner.http.response import (
    ResponseHead,
    decode_response_context,
    error_response,
    response_headers,
)
from trio_runner.http.serve import parse_address, serve_http
from trio_runner.http.uploads import UploadOptions

__all__ = [
    "ContextCodec",
    "Exchanger",
    "H1Limits",
    "HttpBridge",
    "HttpOptions",
    "RequestContext",
    "ResponseHead",
    "UploadOptions",
    "canonical_header_name",
    "decode_response_context",
    "encode_request_context",
    "error_response",
    "parse_address",
    "parse_cookies",
    "response_headers",
    "serve_h1",
    "serve_http",
]

"""Host header values for the Host checks: valid ones, and malformed ones
that would move the path PHP sees, or make a URI PHP cannot parse, if they
were pasted into its URI. The bridge, request and end-to-end tests share
them."""

from __future__ import annotations

GOOD_HOSTS = [
    b"example.com",
    b"example.com:8080",
    b"[::1]:80",
    b"[::ffff:10.0.0.1]",
    b"127.0.0.1",
    b"xn--bcher-kva.example",
    b"a_b.local",
    b"caf%C3%A9.example",
    b"host:65535",
    b"host:",  # an empty port: RFC 3986 allows it, and Go
    b"[v1.fe80::1+eth0]",
    b"",  # no authority: the URI names the server's address
]

BAD_HOSTS = [
    b"x/y",
    b"x?",
    b"x#",
    b"x/hello/injected#",
    b"x/admin?",
    b"user@host",
    b"a b",
    b" example.com",
    b"host:port",
    b"host:80:90",
    b":80",
    b"host:65536",
    b"host:123456",
    b"[::1",
    b"[::1]x",
    b"[:::::]",
    b"[1.2.3.4]",
    b"::1",
    b"a\x01b",
    b"a\x7fb",
    b"a\tb",
    b"caf\xc3\xa9.example",
    b"a%4",
    b"a%zz",
]

"""Units as RoadRunner writes them: Go duration strings and host:port.

Pure functions over strings that raise ValueError with a short reason; the
kinds in ``kinds`` turn that into a config error naming the key.
"""

from __future__ import annotations

import ipaddress
import math
import re

__all__ = ["parse_duration", "split_host_port"]

_SECONDS_PER = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # micro sign
    "μs": 1e-6,  # Greek mu; Go accepts both
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
# "ms" must come before "m" so that "5ms" is not read as 5m + "s".
_UNIT = "ns|us|µs|μs|ms|s|m|h"
_PART = re.compile(rf"({_NUMBER})({_UNIT})")
_DURATION = re.compile(rf"(?:{_NUMBER}(?:{_UNIT}))+")
_PLAIN = re.compile(_NUMBER)
_PORT = re.compile(r"[0-9]{1,5}")
_HOST = re.compile(r"[A-Za-z0-9._-]*")


def parse_duration(value: str | float) -> float:
    """Seconds in ``value``: a number, or a Go duration such as ``"1m30s"``.

    A bare number counts as seconds whether it is a number or a string
    (``"2.5"``), since ``${VAR}`` expansion always yields strings. A leading
    sign is kept; the caller decides whether negative durations make sense.

    Raises:
        ValueError: ``value`` is neither, or is not finite.
    """
    if isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text[1:] if text[:1] in ("+", "-") else text
        if _PLAIN.fullmatch(body):
            seconds = sign * float(body)
        elif _DURATION.fullmatch(body):
            parts = _PART.findall(body)
            seconds = sign * sum(float(n) * _SECONDS_PER[u] for n, u in parts)
        else:
            raise ValueError(f"not a duration: {value!r}")
    else:
        try:
            seconds = float(value)
        except OverflowError as exc:
            raise ValueError(f"duration too large: {value!r}") from exc
    if not math.isfinite(seconds):
        raise ValueError(f"duration not finite: {value!r}")
    return seconds


def split_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` -> ``("127.0.0.1", 8080)``.

    IPv6 hosts come in brackets and are returned without them
    (``"[::1]:80"`` -> ``("::1", 80)``). The host may be empty
    (``":8080"``); the port is 0 to 65535.

    Raises:
        ValueError: with the reason, phrased to follow a rejected value.
    """
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError("expected [IPv6 address]:port")
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{host!r} is not an IPv6 address") from exc
    elif "://" in text:
        raise ValueError("give host:port, without a scheme such as http://")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError("the port is missing")
        if ":" in host:
            raise ValueError("IPv6 addresses go in brackets, e.g. [::1]:8080")
        if not _HOST.fullmatch(host):
            raise ValueError(f"{host!r} is not a host name or IP address")
    if not _PORT.fullmatch(port) or int(port) > 65535:
        raise ValueError("the port must be a number from 0 to 65535")
    return host, int(port)

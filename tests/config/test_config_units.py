from __future__ import annotations

import pytest

from trio_runner.config import parse_duration, split_host_port


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("60s", 60.0),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("2.5s", 2.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("250us", 250e-6),
        ("250µs", 250e-6),
        ("100ns", 100e-9),
        ("1m5ms", 60.005),
        ("0", 0.0),
        ("30", 30.0),
        ("2.5", 2.5),
        (" 10s ", 10.0),
        ("+3s", 3.0),
        ("-3s", -3.0),
        (45, 45.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_reads_go_strings_and_seconds(
    value: str | float, seconds: float
) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["", "s", "1d", "5 s", "1m 30s", "1e3s", "5sec", "--5s", "inf", "nan"],
)
def test_parse_duration_refuses_non_durations(value: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_parse_duration_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="not finite"):
        parse_duration(float("inf"))


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("localhost:80", "localhost", 80),
        (":8080", "", 8080),
        ("[::1]:8080", "::1", 8080),
        ("[::]:0", "::", 0),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
    ],
)
def test_split_host_port_accepts(text: str, host: str, port: int) -> None:
    assert split_host_port(text) == (host, port)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1", "the port is missing"),
        ("127.0.0.1:", "the port must be a number from 0 to 65535"),
        ("127.0.0.1:65536", "the port must be a number from 0 to 65535"),
        ("127.0.0.1:http", "the port must be a number from 0 to 65535"),
        ("::1:8080", "IPv6 addresses go in brackets, e.g. [::1]:8080"),
        ("http://127.0.0.1:8080", "give host:port, without a scheme such as http://"),
        ("[::1]8080", "expected [IPv6 address]:port"),
        ("[nope]:80", "'nope' is not an IPv6 address"),
        ("a b:80", "'a b' is not a host name or IP address"),
    ],
)
def test_split_host_port_refuses_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        split_host_port(text)
    assert str(info.value) == reason

from __future__ import annotations

import pytest

from trio_runner.errors import LocalProtocolError, RelayClosed, RemoteProtocolError
from trio_runner.protocol import (
    Closed,
    ErrorReply,
    Handshake,
    Payload,
    Response,
    State,
    StopRequest,
    StreamCancelled,
    WorkerConnection,
    encode_frame,
)

PID_REPLY = encode_frame(0x01, b'{"pid":31337}')


def ready() -> WorkerConnection:
    connection = WorkerConnection()
    connection.handshake(1)
    connection.receive_data(PID_REPLY)
    assert connection.next_event() == Handshake(31337)
    assert connection.state is State.IDLE
    return connection


def test_connection_handshake_sends_golden_frame(golden_frames) -> None:
    connection = WorkerConnection()
    wire = connection.handshake(4242)
    assert wire.hex() == golden_frames["a_server_pid_handshake"]["frame"]
    assert connection.state is State.HANDSHAKING
    assert connection.next_event() is None
    connection.receive_data(bytes.fromhex(golden_frames["b_worker_pid_reply"]["frame"]))
    assert connection.next_event() == Handshake(31337)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (encode_frame(0, b'{"pid":5}'), "without the CONTROL flag"),
        (encode_frame(0x01, b'{"pid":0}'), "without a positive pid"),
        (encode_frame(0x01, b'{"pid":"7"}'), "without a positive pid"),
        (encode_frame(0x01, b"not json"), "without a positive pid"),
    ],
)
def test_connection_rejects_bad_handshake_reply(reply: bytes, match: str) -> None:
    connection = WorkerConnection()
    connection.handshake(1)
    connection.receive_data(reply)
    with pytest.raises(RemoteProtocolError, match=match):
        connection.next_event()
    assert connection.state is State.BROKEN


def test_connection_request_and_response_round_trip(golden_frames) -> None:
    connection = ready()
    request = bytes.fromhex(golden_frames["g_http_request"]["frame"])
    context = request[16 : 16 + 71]
    wire = connection.request(Payload(context, b"", 0x80))
    assert wire == request
    assert connection.state is State.AWAITING
    connection.receive_data(bytes.fromhex(golden_frames["h_http_response"]["frame"]))
    event = connection.next_event()
    assert isinstance(event, Response)
    assert event.payload.body == b"hello"
    assert len(event.payload.context) == 33
    assert event.payload.codec == 0x80
    assert not event.more
    assert connection.state is State.IDLE


def test_connection_sends_option_even_for_empty_context() -> None:
    connection = ready()
    wire = connection.request(Payload(b"", b"body"))
    assert wire[0] == 0x14 and wire[12:16] == b"\x00\x00\x00\x00"


def test_connection_refuses_empty_request() -> None:
    with pytest.raises(LocalProtocolError, match="context or a body"):
        ready().request(Payload())


def test_connection_error_frame_is_soft_error(golden_frames) -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(bytes.fromhex(golden_frames["e_worker_error"]["frame"]))
    assert connection.next_event() == ErrorReply("boom")
    assert connection.state is State.IDLE


def test_connection_recognises_stop_request(golden_frames) -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(
        bytes.fromhex(golden_frames["d_worker_stop_request"]["frame"])
    )
    assert connection.next_event() == StopRequest()
    assert connection.state is State.IDLE


def test_connection_stop_context_with_body_is_a_response() -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(encode_frame(0, b'{"stop":true}x', (13,)))
    event = connection.next_event()
    assert isinstance(event, Response) and event.payload.body == b"x"


def test_connection_streams_chunks_with_ping_and_pong(golden_frames) -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(
        encode_frame(0, b"ctxone", (3,), 0x01)
        + encode_frame(0, b"ctxtwo", (3,), 0x01 | 0x04)
        + encode_frame(0, b"ctx", (3,))
    )
    first = connection.next_event()
    assert isinstance(first, Response) and first.more and not first.ping
    assert connection.state is State.STREAMING
    second = connection.next_event()
    assert isinstance(second, Response) and second.more and second.ping
    assert connection.pong().hex() == golden_frames["f_server_pong"]["frame"]
    last = connection.next_event()
    assert isinstance(last, Response) and not last.more and last.payload.body == b""
    assert connection.state is State.IDLE


def test_connection_cancel_drains_until_final_frame(golden_frames) -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(encode_frame(0, b"a", (0,), 0x01))
    assert isinstance(connection.next_event(), Response)
    wire = connection.cancel()
    assert wire.hex() == golden_frames["f_server_stream_stop"]["frame"]
    connection.receive_data(encode_frame(0, b"b", (0,), 0x01))
    assert connection.next_event() is None
    connection.receive_data(encode_frame(0, b"", (0,)))
    assert connection.next_event() == StreamCancelled()
    assert connection.state is State.IDLE


def test_connection_stop_then_eof_is_closed(golden_frames) -> None:
    connection = ready()
    assert connection.stop().hex() == golden_frames["c_server_stop"]["frame"]
    connection.receive_data(b"")
    assert connection.next_event() == Closed()
    assert connection.state is State.CLOSED


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (encode_frame(0, b"abc", ()), "exactly one option"),
        (encode_frame(0, b"abc", (1, 2)), "exactly one option"),
        (encode_frame(0, b"abc", (4,)), "context length 4 exceeds the payload"),
        (encode_frame(0x01, b"{}"), "control frame instead of a response"),
        (b"PHP Notice: oops\n", "wrote to stdout"),
    ],
)
def test_connection_rejects_bad_response(reply: bytes, match: str) -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(reply)
    with pytest.raises(RemoteProtocolError, match=match):
        connection.next_event()
    assert connection.state is State.BROKEN
    with pytest.raises(RemoteProtocolError, match="broken"):
        connection.next_event()


def test_connection_eof_mid_request_is_an_error() -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(encode_frame(0, b"abc", (1,))[:14])
    connection.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a frame") as caught:
        connection.next_event()
    assert not isinstance(caught.value, RelayClosed)


def test_connection_eof_between_frames_is_relay_closed() -> None:
    connection = ready()
    connection.request(Payload(b"{}"))
    connection.receive_data(b"")
    with pytest.raises(
        RelayClosed, match="closed its relay before answering its request"
    ):
        connection.next_event()
    assert connection.state is State.BROKEN


def test_connection_frame_from_idle_worker_is_an_error() -> None:
    connection = ready()
    connection.receive_data(encode_frame(0, b"x", (0,)))
    with pytest.raises(RemoteProtocolError, match="while idle"):
        connection.next_event()


@pytest.mark.parametrize(
    ("method", "args"),
    [("request", (Payload(b"x"),)), ("pong", ()), ("cancel", ()), ("stop", ())],
)
def test_connection_refuses_calls_before_handshake(method: str, args: tuple) -> None:
    with pytest.raises(LocalProtocolError, match="in state new"):
        getattr(WorkerConnection(), method)(*args)

"""Argument decoding and reply encoding per codec, and the registry's rules."""

from __future__ import annotations

import base64
from typing import Any

import attrs
import msgpack
import pytest

from trio_runner.errors import RpcError
from trio_runner.protocol import Codec
from trio_runner.rpc import Method, Registry
from trio_runner.rpc.codec import decode_argument, encode_reply_value
from trio_runner.rpc.proto import status_pb2


@attrs.frozen
class Inner:
    count: int = 0


@attrs.frozen
class Outer:
    name: str = ""
    inner: Inner = attrs.field(factory=Inner)
    blob: bytes = b""
    extra: Any = None


def test_codec_fills_nested_attrs_classes_ignoring_case_and_unknown_keys() -> None:
    body = b'{"NAME": "a", "Inner": {"COUNT": 3.0}, "blob": "AAE=", "x": 1}'
    assert decode_argument(Codec.JSON, body, Outer) == Outer("a", Inner(3), b"\x00\x01")


def test_codec_null_leaves_the_default() -> None:
    assert decode_argument(Codec.JSON, b'{"name": null}', Outer) == Outer()
    assert decode_argument(Codec.JSON, b"null", str) == ""


@pytest.mark.parametrize(
    ("body", "kind", "text"),
    [
        (b'{"inner": {"count": 1.5}}', Outer, 'json: "inner".count must be an integer'),
        (b'{"blob": "%%%"}', Outer, 'json: "blob" must be base64'),
        (b"true", int, "json: the argument must be an integer, got a boolean"),
        (b"[1]", dict, "json: the argument must be an object, got a list"),
        (b'"x"', status_pb2.Request, "json: the argument must be an object"),
        (b'{"plugin": 5}', status_pb2.Request, "json: cannot decode the argument"),
    ],
)
def test_codec_json_mismatches_name_the_field(
    body: bytes, kind: type, text: str
) -> None:
    with pytest.raises(RpcError) as info:
        decode_argument(Codec.JSON, body, kind)
    assert str(info.value).startswith(text)


def test_codec_msgpack_and_proto_decode_errors_are_rpc_errors() -> None:
    with pytest.raises(RpcError, match="msgpack: the argument is not valid msgpack"):
        decode_argument(Codec.MSGPACK, b"\xc1", str)
    with pytest.raises(RpcError, match="proto: cannot decode the argument"):
        decode_argument(Codec.PROTO, b"\x0a\x05ab", status_pb2.Request)
    packed = msgpack.packb({"name": "m", "blob": b"\x00"})
    assert decode_argument(Codec.MSGPACK, packed, Outer) == Outer("m", blob=b"\x00")


def test_codec_replies_in_each_codec() -> None:
    assert encode_reply_value(Codec.JSON, {"workers": None}) == b'{"workers":null}'
    assert (
        encode_reply_value(Codec.JSON, b"{}") == b'"' + base64.b64encode(b"{}") + b'"'
    )
    assert msgpack.unpackb(encode_reply_value(Codec.MSGPACK, [1, "a"])) == [1, "a"]
    assert encode_reply_value(Codec.RAW, b"\x00") == b"\x00"
    response = status_pb2.Response(code=503, message="busy")
    assert encode_reply_value(Codec.PROTO, response) == response.SerializeToString()
    with pytest.raises(RpcError) as info:
        encode_reply_value(Codec.RAW, {"a": 1})
    assert str(info.value) == "unknown Raw payload type"
    with pytest.raises(RpcError) as info:
        encode_reply_value(Codec.PROTO, True)
    assert str(info.value) == "unknown Proto payload type"


async def _noop(argument: object) -> None:
    return None


def test_registry_refuses_bad_names_duplicates_and_types() -> None:
    with pytest.raises(ValueError, match=r"Service\.Method"):
        Method("informer", str, _noop)
    with pytest.raises(TypeError, match="unsupported RPC argument type"):
        Method("a.B", list, _noop)
    registry = Registry()
    registry.add(Method("a.B", str, _noop))
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(Method("a.B", bool, _noop))
    assert registry.names == ["a.B"]


def test_registry_splits_service_and_method_at_the_last_dot() -> None:
    registry = Registry()
    registry.add(Method("v1.status.Get", str, _noop))
    assert registry.lookup("v1.status.Get").name == "v1.status.Get"
    with pytest.raises(RpcError) as info:
        registry.lookup("v1.status.Put")
    assert str(info.value) == "rpc: can't find method v1.status.Put"
    with pytest.raises(RpcError) as info:
        registry.lookup("v1.Get")
    assert str(info.value) == "rpc: can't find service v1.Get"

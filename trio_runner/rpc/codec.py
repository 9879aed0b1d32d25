"""RPC bodies: arguments decoded into typed values, replies encoded, per codec.

A method declares the type of its argument; the body is decoded into it
the way RoadRunner's Go codecs decode into a Go value (PROTOCOL.md 5.1):

=========  ==========================================================
codec      argument types it can fill
=========  ==========================================================
JSON       ``str``, ``bool``, ``int``, ``float``, ``bytes`` (base64),
           ``dict``, an attrs class (object keys matched to field names
           case-insensitively, unknown keys ignored), a protobuf message
msgpack    the same, without protobuf messages; ``bytes`` as bin
proto      a protobuf message
raw        ``bytes``
gob        nothing: trio_runner does not speak Go's gob
=========  ==========================================================

An empty body skips decoding and leaves the type's zero value (``""``,
``False``, an empty message), as Go does; PHP relies on it. ``null`` for a
field leaves its default, also as Go does. Replies go out in the request's
codec. Failures raise ``RpcError`` with the text the caller gets.
"""

from __future__ import annotations

import base64
import json
import typing
from collections.abc import Mapping
from typing import Any

import attrs
import msgpack
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from trio_runner.errors import RpcError
from trio_runner.protocol import Codec

__all__ = ["decode_argument", "encode_reply_value", "zero_value"]

_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    bytes: "bytes",
    dict: "an object",
}


def zero_value(kind: type) -> Any:
    """What an argument of type ``kind`` is when the body is empty."""
    if kind in (str, bool, int, float, bytes, dict):
        return kind()
    if _is_proto(kind) or attrs.has(kind):
        return kind()
    raise TypeError(f"unsupported RPC argument type {kind!r}")


def decode_argument(codec: Codec, body: bytes, kind: type) -> Any:
    """Decode ``body`` (in ``codec``) into a value of type ``kind``.

    Raises:
        RpcError: the codec cannot carry ``kind``, or the body is not a
            valid encoding of one.
    """
    if not body:
        return zero_value(kind)
    if codec is Codec.JSON:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RpcError(f"json: the argument is not valid JSON: {exc}") from exc
        if _is_proto(kind):
            return _proto_from_data(kind, data)
        return _convert(data, kind, "the argument", "json")
    if codec is Codec.MSGPACK:
        try:
            data = msgpack.unpackb(body, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise RpcError(
                f"msgpack: the argument is not valid msgpack: {exc}"
            ) from exc
        return _convert(data, kind, "the argument", "msgpack")
    if codec is Codec.PROTO:
        if not _is_proto(kind):
            raise RpcError(
                f"proto: this method takes {_name(kind)}, not a protobuf message; "
                "call it with the JSON codec"
            )
        try:
            message: Message = kind()
            message.ParseFromString(body)
        except DecodeError as exc:
            raise RpcError(f"proto: cannot decode the argument: {exc}") from exc
        return message
    if codec is Codec.RAW:
        if kind is not bytes:
            raise RpcError(
                f"raw: this method takes {_name(kind)}, and the raw codec carries "
                "only bytes; call it with the JSON codec"
            )
        return body
    raise RpcError(
        f"the {codec.name.lower()} codec is not supported; "
        "use JSON, msgpack, proto or raw"
    )


def encode_reply_value(codec: Codec, value: Any) -> bytes:
    """Encode a method's result in ``codec``.

    Raises:
        RpcError: the codec cannot carry the value (e.g. a dict as raw).
    """
    if codec is Codec.JSON:
        if isinstance(value, Message):
            data = json_format.MessageToDict(value, preserving_proto_field_name=True)
            return json.dumps(data, separators=(",", ":")).encode()
        return json.dumps(value, separators=(",", ":"), default=_json_default).encode()
    if codec is Codec.MSGPACK:
        if isinstance(value, Message):
            value = json_format.MessageToDict(value, preserving_proto_field_name=True)
        return bytes(msgpack.packb(value, use_bin_type=True))
    if codec is Codec.PROTO:
        if not isinstance(value, Message):
            raise RpcError("unknown Proto payload type")
        return value.SerializeToString()
    if codec is Codec.RAW:
        if not isinstance(value, bytes | bytearray):
            raise RpcError("unknown Raw payload type")
        return bytes(value)
    raise RpcError(
        f"the {codec.name.lower()} codec is not supported; "
        "use JSON, msgpack, proto or raw"
    )


def _json_default(value: object) -> object:
    # Go encodes []byte as base64 in JSON; rpc.Config relies on it.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return str(value)  # TOML dates and times in rpc.Config


def _is_proto(kind: type) -> bool:
    return isinstance(kind, type) and issubclass(kind, Message)


def _name(kind: object) -> str:
    if isinstance(kind, type) and kind in _NAMES:
        return _NAMES[kind]
    if typing.get_origin(kind) in (tuple, list):
        return "a list"
    if isinstance(kind, type) and attrs.has(kind):
        return "an object"
    return repr(kind)


def _what(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _proto_from_data(kind: type[Message], data: object) -> Message:
    if not isinstance(data, Mapping):
        raise RpcError(f"json: the argument must be an object, got {_what(data)}")
    try:
        return json_format.ParseDict(dict(data), kind(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise RpcError(f"json: cannot decode the argument: {exc}") from exc


def _convert(value: Any, kind: Any, where: str, codec: str) -> Any:
    """``value`` (plain decoded data) as ``kind``, or an error naming ``where``."""
    origin = typing.get_origin(kind)
    if origin in (tuple, list):
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise _mismatch(codec, where, kind, value)
        (item,) = {arg for arg in typing.get_args(kind) if arg is not Ellipsis}
        return tuple(
            _convert(v, item, f"{where}[{i}]", codec) for i, v in enumerate(value)
        )
    if origin is dict:
        kind = dict
    if kind is Any:
        return value
    if value is None:
        return zero_value(kind)
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _mismatch(codec, where, kind, value)
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _mismatch(codec, where, kind, value)
    if kind is bytes:
        return _bytes(value, where, codec)
    if kind in (str, bool):
        if type(value) is not kind:
            raise _mismatch(codec, where, kind, value)
        return value
    if kind is dict:
        if not isinstance(value, Mapping):
            raise _mismatch(codec, where, kind, value)
        return dict(value)
    if attrs.has(kind):
        return _object(value, kind, where, codec)
    raise TypeError(f"unsupported RPC argument type {kind!r}")


def _bytes(value: object, where: str, codec: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise RpcError(f"{codec}: {where} must be base64, got {value!r}") from exc
    raise _mismatch(codec, where, bytes, value)


def _object(value: object, kind: type, where: str, codec: str) -> Any:
    if not isinstance(value, Mapping):
        raise _mismatch(codec, where, kind, value)
    hints = typing.get_type_hints(kind)
    # Go matches JSON keys to struct fields ignoring case; so do we.
    by_key = {str(key).lower(): item for key, item in value.items()}
    args = {}
    for field in attrs.fields(kind):
        key = field.name.lower()
        if key in by_key:
            inner = where if where != "the argument" else ""
            label = f"{inner}.{field.name}" if inner else f'"{field.name}"'
            args[field.name] = _convert(by_key[key], hints[field.name], label, codec)
    return kind(**args)


def _mismatch(codec: str, where: str, kind: object, value: object) -> RpcError:
    return RpcError(f"{codec}: {where} must be {_name(kind)}, got {_what(value)}")

"""Go's encoding/gob, as much of it as net/rpc and the Lambda messages need, in pure Python.

A gob stream is a run of messages, each a byte count and that many bytes. A message holds
either a type definition (a negative type id, then a `wireType` value) or a value (a positive
type id, then the value). Each direction of a connection is its own stream with its own type
ids, which the sender hands out: the receiver reads them off the wire and never assumes them.

Values come out as plain Python: a struct is a dict of the fields that were sent (gob leaves
zero values out, so a missing key means zero), a slice or array a list, a map a dict, []byte
bytes, a string str (invalid UTF-8 kept with surrogateescape, so it re-encodes to the same
bytes), integers int, bool bool, floats float, complex complex. Type definitions stay in the
shape gob sends them, as dicts, so that they can be written back exactly.

Everything that can go wrong with the input raises GobError: a truncated or corrupt message,
an absurd length or count, nesting past MAX_DEPTH, an unknown type id. Sizes are checked
before anything is allocated, so hostile input costs at most about the message cap.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The builtin type ids (gob's type.go): never defined on the wire.
BOOL, INT, UINT, FLOAT, BYTES, STRING, COMPLEX, INTERFACE = 1, 2, 3, 4, 5, 6, 7, 8
WIRE_TYPE, ARRAY_TYPE, COMMON_TYPE, SLICE_TYPE = 16, 17, 18, 19
STRUCT_TYPE, FIELD_TYPE, FIELD_TYPE_SLICE, MAP_TYPE = 20, 21, 22, 23
# The descriptor of GobEncoder / BinaryMarshaler / TextMarshaler types: a struct holding a
# CommonType. Its id is internal to Go's tables and never on the wire; this one is ours.
MARSHALER_TYPE = 24
FIRST_USER_ID = 64  # ids below are reserved; a definition of one is refused
SCALARS = frozenset({BOOL, INT, UINT, FLOAT, BYTES, STRING, COMPLEX})

MAX_MESSAGE = 8 << 20  # bytes: above Lambda's 6 MB payload limit with room for the envelope
MAX_ELEMENTS = 1 << 20  # in one slice, array or map
MAX_DEPTH = 64  # values nested in values
MAX_FIELDS = 4096  # in one struct definition


class GobError(Exception):
    """Input that is not a gob stream this codec can read, or a value it cannot write.
    `size` is set when a message was refused for its length alone."""

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


# ---- types ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StructT:
    name: str
    fields: tuple[tuple[str, int], ...]  # (name, type id), in field-number order


@dataclass(frozen=True, slots=True)
class SliceT:
    name: str
    elem: int


@dataclass(frozen=True, slots=True)
class ArrayT:
    name: str
    elem: int
    length: int


@dataclass(frozen=True, slots=True)
class MapT:
    name: str
    key: int
    elem: int


@dataclass(frozen=True, slots=True)
class MarshalerT:
    """A type that encodes itself (GobEncoder, BinaryMarshaler, TextMarshaler): its values
    travel as a byte string."""

    name: str


GobType = StructT | SliceT | ArrayT | MapT | MarshalerT

_COMMON = ("CommonType", COMMON_TYPE)
BUILTIN_TYPES: dict[int, GobType] = {
    WIRE_TYPE: StructT(
        "wireType",
        (
            ("ArrayT", ARRAY_TYPE),
            ("SliceT", SLICE_TYPE),
            ("StructT", STRUCT_TYPE),
            ("MapT", MAP_TYPE),
            ("GobEncoderT", MARSHALER_TYPE),
            ("BinaryMarshalerT", MARSHALER_TYPE),
            ("TextMarshalerT", MARSHALER_TYPE),
        ),
    ),
    ARRAY_TYPE: StructT("arrayType", (_COMMON, ("Elem", INT), ("Len", INT))),
    COMMON_TYPE: StructT("CommonType", (("Name", STRING), ("Id", INT))),
    SLICE_TYPE: StructT("sliceType", (_COMMON, ("Elem", INT))),
    STRUCT_TYPE: StructT("structType", (_COMMON, ("Field", FIELD_TYPE_SLICE))),
    FIELD_TYPE: StructT("fieldType", (("Name", STRING), ("Id", INT))),
    FIELD_TYPE_SLICE: SliceT("[]*gob.fieldType", FIELD_TYPE),
    MAP_TYPE: StructT("mapType", (_COMMON, ("Key", INT), ("Elem", INT))),
    MARSHALER_TYPE: StructT("gobEncoderType", (_COMMON,)),
}

_KINDS = (
    "ArrayT",
    "SliceT",
    "StructT",
    "MapT",
    "GobEncoderT",
    "BinaryMarshalerT",
    "TextMarshalerT",
)


def compile_wire_type(wire: Mapping[str, Any]) -> GobType:
    """The type a received `wireType` (as decoded: a dict) describes."""
    present = [k for k in _KINDS if k in wire]
    if len(present) != 1:
        raise GobError(f"a type definition must describe one kind of type, not {present}")
    kind = present[0]
    desc = wire[kind]
    name = str(desc.get("CommonType", {}).get("Name", ""))
    if kind == "StructT":
        fields = tuple((str(f.get("Name", "")), int(f.get("Id", 0))) for f in desc.get("Field", []))
        if len(fields) > MAX_FIELDS:
            raise GobError(f"a struct of {len(fields)} fields")
        for field_name, tid in fields:
            if tid <= 0:
                raise GobError(f"field {field_name!r} has type id {tid}")
        return StructT(name, fields)
    if kind == "SliceT":
        return SliceT(name, _type_ref(desc, "Elem"))
    if kind == "ArrayT":
        length = int(desc.get("Len", 0))
        if not 0 <= length <= MAX_ELEMENTS:
            raise GobError(f"an array of {length} elements")
        return ArrayT(name, _type_ref(desc, "Elem"), length)
    if kind == "MapT":
        return MapT(name, _type_ref(desc, "Key"), _type_ref(desc, "Elem"))
    return MarshalerT(name)


def _type_ref(desc: Mapping[str, Any], key: str) -> int:
    tid = int(desc.get(key, 0))
    if tid <= 0:
        raise GobError(f"{key} type id {tid}")
    return tid


def struct_wire_type(name: str, tid: int, fields: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """The `wireType` dict defining a struct (what Go's encoder would send for it)."""
    common: dict[str, Any] = {"Name": name, "Id": tid} if name else {"Id": tid}
    desc: dict[str, Any] = {"CommonType": common}
    listed = [{"Name": n, "Id": t} for n, t in fields]
    if listed:
        desc["Field"] = listed
    return {"StructT": desc}


def slice_wire_type(name: str, tid: int, elem: int) -> dict[str, Any]:
    common: dict[str, Any] = {"Name": name, "Id": tid} if name else {"Id": tid}
    return {"SliceT": {"CommonType": common, "Elem": elem}}


# ---- integers ------------------------------------------------------------------------------


def put_uint(out: bytearray, n: int) -> None:
    if n < 0 or n >= 1 << 64:
        raise GobError(f"unsigned integer out of range: {n}")
    if n < 0x80:
        out.append(n)
        return
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    out.append(256 - len(raw))
    out += raw


def put_int(out: bytearray, i: int) -> None:
    if not -(1 << 63) <= i < 1 << 63:
        raise GobError(f"signed integer out of range: {i}")
    put_uint(out, (~i << 1) | 1 if i < 0 else i << 1)


def uint_bytes(n: int) -> bytes:
    out = bytearray()
    put_uint(out, n)
    return bytes(out)


def int_bytes(i: int) -> bytes:
    out = bytearray()
    put_int(out, i)
    return bytes(out)


def uint_size(first: int) -> int:
    """How many more bytes an unsigned integer takes after its first byte."""
    if first < 0x80:
        return 0
    n = 256 - first
    if n > 8:
        raise GobError(f"bad integer length byte {first:#04x}")
    return n


# ---- reading -------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("at", "data", "end")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.end = len(data)

    def left(self) -> int:
        return self.end - self.at

    def byte(self) -> int:
        if self.at >= self.end:
            raise GobError("message ends too soon")
        b = self.data[self.at]
        self.at += 1
        return b

    def uint(self) -> int:
        first = self.byte()
        n = uint_size(first)
        if n == 0:
            return first
        if self.end - self.at < n:
            raise GobError("message ends inside an integer")
        value = int.from_bytes(self.data[self.at : self.at + n], "big")
        self.at += n
        return value

    def signed(self) -> int:
        u = self.uint()
        return ~(u >> 1) if u & 1 else u >> 1

    def raw(self) -> bytes:
        n = self.uint()
        if n > self.end - self.at:
            raise GobError(f"a length of {n} with {self.end - self.at} bytes left")
        value = self.data[self.at : self.at + n]
        self.at += n
        return value

    def count(self, per_item: int = 1) -> int:
        """A slice, array or map length: each element takes at least `per_item` bytes, so a
        count the rest of the message cannot hold is corrupt, and refused before allocating."""
        n = self.uint()
        if n > MAX_ELEMENTS or n * per_item > self.end - self.at:
            raise GobError(f"a count of {n} with {self.end - self.at} bytes left")
        return n


def _float(u: int) -> float:
    value: float = struct.unpack("<d", u.to_bytes(8, "big"))[0]
    return value


def _float_bits(f: float) -> int:
    return int.from_bytes(struct.pack("<d", f), "big")


@dataclass(frozen=True, slots=True)
class TypeDef:
    """A definition message: `wire` defines type `type_id`."""

    type_id: int
    wire: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Value:
    """A value message: `value`, of type `type_id`."""

    type_id: int
    value: Any


Message = TypeDef | Value


class Decoder:
    """One incoming gob stream: its type table grows with each definition received."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.types: dict[int, GobType] = dict(BUILTIN_TYPES)

    def check_length(self, n: int) -> None:
        if n > self.max_message:
            raise GobError(f"a message of {n} bytes (at most {self.max_message})", size=n)
        if n == 0:
            raise GobError("an empty message")

    def message(self, body: bytes) -> Message:
        """Decode one message (without its length prefix). A definition is recorded."""
        if len(body) > self.max_message:
            raise GobError(f"a message of {len(body)} bytes", size=len(body))
        r = _Reader(body)
        tid = r.signed()
        if tid < 0:
            tid = -tid
            if tid < FIRST_USER_ID:
                raise GobError(f"a definition of reserved type id {tid}")
            if tid in self.types:
                raise GobError(f"type id {tid} defined twice")
            wire = self._struct(r, WIRE_TYPE, 0, top=False)
            if r.left():
                raise GobError(f"{r.left()} bytes after a type definition")
            self.types[tid] = compile_wire_type(wire)
            return TypeDef(tid, wire)
        if tid == 0:
            raise GobError("type id 0")
        t = self.types.get(tid)
        if isinstance(t, StructT):
            value = self._struct(r, tid, 0, top=True)
        else:
            if tid not in SCALARS and t is None:
                raise GobError(f"a value of undefined type id {tid}")
            if r.byte() != 0:
                raise GobError("a non-struct value without its zero field delta")
            value = self._value(r, tid, 0)
        if r.left():
            raise GobError(f"{r.left()} bytes after a value")
        return Value(tid, value)

    def messages(self, data: bytes) -> Iterator[Message]:
        """Every message of a stream held whole in `data`; a partial last message is an error."""
        r = _Reader(data)
        while r.left():
            n = r.uint()
            self.check_length(n)
            if n > r.left():
                raise GobError(f"a message of {n} bytes with {r.left()} left")
            body = data[r.at : r.at + n]
            r.at += n
            yield self.message(body)

    def _value(self, r: _Reader, tid: int, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise GobError(f"values nested more than {MAX_DEPTH} deep")
        if tid == INT:
            return r.signed()
        if tid == UINT:
            return r.uint()
        if tid == STRING:
            return r.raw().decode("utf-8", "surrogateescape")
        if tid == BYTES:
            return r.raw()
        if tid == BOOL:
            return r.uint() != 0
        if tid == FLOAT:
            return _float(r.uint())
        if tid == COMPLEX:
            return complex(_float(r.uint()), _float(r.uint()))
        if tid == INTERFACE:
            raise GobError("interface values are not supported")
        t = self.types.get(tid)
        if t is None:
            raise GobError(f"undefined type id {tid}")
        if isinstance(t, StructT):
            return self._struct(r, tid, depth, top=False)
        if isinstance(t, SliceT):
            return [self._value(r, t.elem, depth + 1) for _ in range(r.count())]
        if isinstance(t, ArrayT):
            n = r.count()
            if n != t.length:
                raise GobError(f"an array of {n} elements, defined with {t.length}")
            return [self._value(r, t.elem, depth + 1) for _ in range(n)]
        if isinstance(t, MapT):
            out: dict[Any, Any] = {}
            for _ in range(r.count(2)):
                key = self._value(r, t.key, depth + 1)
                if isinstance(key, dict | list):
                    raise GobError("map keys of struct, slice or array type are not supported")
                out[key] = self._value(r, t.elem, depth + 1)
            return out
        return r.raw()  # MarshalerT

    def _struct(self, r: _Reader, tid: int, depth: int, top: bool) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise GobError(f"values nested more than {MAX_DEPTH} deep")
        t = self.types[tid]
        assert isinstance(t, StructT)
        out: dict[str, Any] = {}
        field = -1
        while True:
            if top and not r.left():  # Go accepts a top-level struct without its end mark
                return out
            delta = r.uint()
            if delta == 0:
                return out
            field += delta
            if field >= len(t.fields):
                raise GobError(f"field {field} of a struct of {len(t.fields)} fields")
            name, ftid = t.fields[field]
            out[name] = self._value(r, ftid, depth + 1)


# ---- writing -------------------------------------------------------------------------------


class Encoder:
    """One outgoing gob stream. Types are registered with define(); each definition is sent
    the first time a value needs it, outer type first and then the types of its parts, as
    Go's encoder sends them."""

    def __init__(self) -> None:
        self.types: dict[int, GobType] = dict(BUILTIN_TYPES)
        self.wire: dict[int, dict[str, Any]] = {}
        self.sent: set[int] = set()

    def define(self, tid: int, wire: dict[str, Any]) -> None:
        if tid < FIRST_USER_ID:
            raise GobError(f"type id {tid} is reserved")
        self.types[tid] = compile_wire_type(wire)
        self.wire[tid] = wire

    def encode(self, tid: int, value: Any) -> bytes:
        """The messages for one value: the definitions not yet sent, then the value."""
        out = bytearray()
        self._send_type(out, tid)
        body = bytearray()
        put_int(body, tid)
        t = self.types.get(tid)
        if isinstance(t, StructT):
            self._struct(body, t, value)
        else:
            body.append(0)  # a non-struct value is sent as field 0 of a pretend struct
            self._value(body, tid, value)
        _frame(out, body)
        return bytes(out)

    def typedef(self, tid: int, wire: Mapping[str, Any]) -> bytes:
        """One definition message, whatever was sent before."""
        body = bytearray()
        put_int(body, -tid)
        t = self.types[WIRE_TYPE]
        assert isinstance(t, StructT)
        self._struct(body, t, wire)
        out = bytearray()
        _frame(out, body)
        return bytes(out)

    def _send_type(self, out: bytearray, tid: int) -> None:
        if tid < FIRST_USER_ID or tid in self.sent:
            return
        wire = self.wire.get(tid)
        if wire is None:
            raise GobError(f"type id {tid} is not defined")
        self.sent.add(tid)
        out += self.typedef(tid, wire)
        t = self.types[tid]
        if isinstance(t, StructT):
            for _, ftid in t.fields:
                self._send_type(out, ftid)
        elif isinstance(t, SliceT | ArrayT):
            self._send_type(out, t.elem)
        elif isinstance(t, MapT):
            self._send_type(out, t.key)
            self._send_type(out, t.elem)

    def _value(self, out: bytearray, tid: int, v: Any) -> None:
        try:
            if tid == INT:
                put_int(out, _integer(v))
            elif tid == UINT:
                put_uint(out, _integer(v))
            elif tid == STRING:
                _put_raw(out, str(v).encode("utf-8", "surrogateescape"))
            elif tid == BYTES:
                _put_raw(out, bytes(v))
            elif tid == BOOL:
                out.append(1 if v else 0)
            elif tid == FLOAT:
                put_uint(out, _float_bits(float(v)))
            elif tid == COMPLEX:
                c = complex(v)
                put_uint(out, _float_bits(c.real))
                put_uint(out, _float_bits(c.imag))
            else:
                self._composite(out, tid, v)
        except (TypeError, ValueError, AttributeError) as exc:
            raise GobError(f"cannot encode {v!r} as type {tid}: {exc}") from None

    def _composite(self, out: bytearray, tid: int, v: Any) -> None:
        t = self.types.get(tid)
        if t is None:
            raise GobError(f"cannot encode a value of type id {tid}")
        if isinstance(t, StructT):
            self._struct(out, t, v)
        elif isinstance(t, SliceT | ArrayT):
            items = list(v)
            if isinstance(t, ArrayT) and len(items) != t.length:
                raise GobError(f"an array of {len(items)} elements, defined with {t.length}")
            put_uint(out, len(items))
            for item in items:
                self._value(out, t.elem, item)
        elif isinstance(t, MapT):
            put_uint(out, len(v))
            for key, item in v.items():
                self._value(out, t.key, key)
                self._value(out, t.elem, item)
        else:
            _put_raw(out, bytes(v))

    def _struct(self, out: bytearray, t: StructT, v: Mapping[str, Any]) -> None:
        names = {name for name, _ in t.fields}
        extra = [k for k in v if k not in names]
        if extra:
            raise GobError(f"{t.name or 'struct'} has no field {extra[0]!r}")
        last = -1
        for number, (name, ftid) in enumerate(t.fields):
            if name not in v or self._zero(ftid, v[name]):
                continue
            put_uint(out, number - last)
            last = number
            self._value(out, ftid, v[name])
        out.append(0)

    def _zero(self, tid: int, v: Any) -> bool:
        """Gob leaves zero values out; a nested struct is sent even when all zero."""
        if v is None:
            return True
        if tid in SCALARS:
            return not v
        t = self.types.get(tid)
        if isinstance(t, SliceT | MapT | MarshalerT):
            return len(v) == 0
        return False


def _integer(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("not an integer")
    return v


def _put_raw(out: bytearray, data: bytes) -> None:
    put_uint(out, len(data))
    out += data


def _frame(out: bytearray, body: bytearray) -> None:
    put_uint(out, len(body))
    out += body

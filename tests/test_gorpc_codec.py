"""The gob codec against byte captures from Go (tests/data/go-rpc-vectors.json: Go 1.19.8's
net/rpc and the real aws-lambda-go library), and its properties: round trips, and hostile
bytes only ever raising GobError, quickly and within a memory bound."""

from __future__ import annotations

import json
import resource
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.runtimes.gorpc import gob
from workbench.core.runtimes.gorpc.client import (
    INVOKE_REQUEST,
    PING_REQUEST,
    REQUEST,
    InvokeArgs,
    _encoder,
    reply_of,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "go-rpc-vectors.json").read_text())


def _stream(entry: dict[str, Any]) -> tuple[str, int, str]:
    """Entries of one connection and direction form one gob stream (a fresh process is its own)."""
    prefix = "fresh" if "fresh_process" in entry["name"] else entry["name"].split("_")[0]
    return prefix, entry["connection"], entry["direction"]


def _as_json(value: Any) -> Any:
    """A decoded value in the vectors' notation ([]byte as {"$bytes": text})."""
    if isinstance(value, bytes):
        return {"$bytes": value.decode()}
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def test_every_vector_decodes_as_captured_and_reencodes_byte_for_byte() -> None:
    streams: dict[tuple[str, int, str], tuple[gob.Decoder, gob.Encoder]] = {}
    assert len(VECTORS) == 34
    for entry in VECTORS:
        dec, enc = streams.setdefault(_stream(entry), (gob.Decoder(), gob.Encoder()))
        data = bytes.fromhex(entry["hex"])
        messages = list(dec.messages(data))
        again = bytearray()
        for got, want in zip(messages, entry["decoded"], strict=True):
            assert got.type_id == want["type_id"], entry["name"]
            if isinstance(got, gob.TypeDef):
                assert want["kind"] == "typedef"
                assert got.wire == want["wireType"], entry["name"]
                enc.define(got.type_id, got.wire)
            else:
                assert want["kind"] == "value"
                assert _as_json(got.value) == want["value"], entry["name"]
                # the encoder sends the definitions a value needs itself, in Go's order
                again += enc.encode(got.type_id, got.value)
        assert bytes(again) == data, f"{entry['name']} {entry['direction']}"


def test_our_requests_are_byte_identical_to_gos_client() -> None:
    """Ping then Invoke on a fresh connection, as Go's net/rpc client sent them."""
    enc = _encoder()
    ping = enc.encode(REQUEST, {"ServiceMethod": "Function.Ping", "Seq": 0})
    ping += enc.encode(PING_REQUEST, {})
    args = InvokeArgs(
        b'"daniel"',
        "req-0001",
        4102444800,
        250000000,
        "arn:aws:lambda:us-east-1:123456789012:function:upper",
    )
    invoke = enc.encode(REQUEST, {"ServiceMethod": "Function.Invoke", "Seq": 1})
    invoke += enc.encode(INVOKE_REQUEST, args.message())
    by_name = {(e["name"], e["direction"]): bytes.fromhex(e["hex"]) for e in VECTORS}
    assert ping == by_name["own_ping", "client->server"]
    assert invoke == by_name["own_invoke_daniel", "client->server"]
    assert ping == by_name["real_ping", "client->server"]


def test_the_real_librarys_panic_reads_as_lambdas_error_shape() -> None:
    dec = gob.Decoder()
    reply = None
    for entry in VECTORS:
        if _stream(entry) == ("real", 1, "server->client"):
            messages = dec.messages(bytes.fromhex(entry["hex"]))
            values = [m for m in messages if isinstance(m, gob.Value)]
            if entry["name"] == "real_invoke_panic":
                reply = reply_of(values[1].value)
                captured = entry["decoded"][-1]["value"]["Error"]
    assert reply is not None and reply.error is not None
    assert reply.error.should_exit
    doc = reply.error.document()
    assert (doc["errorMessage"], doc["errorType"]) == (captured["Message"], captured["Type"])
    assert len(doc["stackTrace"]) == len(captured["StackTrace"])
    assert doc["stackTrace"] and {"path", "line", "label"} == set(doc["stackTrace"][0])
    assert any(f["label"] == "(*Function).Invoke" for f in doc["stackTrace"])


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (127, "7f"), (128, "ff80"), (256, "fe0100"), (300, "fe012c")],
)
def test_unsigned_integers(value: int, encoded: str) -> None:
    assert gob.uint_bytes(value).hex() == encoded


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (-1, "01"),
        (3, "06"),
        (-65, "ff81"),
        (-129, "fe0101"),
        (884, "fe06e8"),
        (250000000, "fc1dcd6500"),
        (4102444800, "fb01e90cae00"),
    ],
)
def test_signed_integers(value: int, encoded: str) -> None:
    assert gob.int_bytes(value).hex() == encoded


@pytest.mark.parametrize(
    ("tid", "value", "encoded"),
    [
        (gob.FLOAT, 17.0, "050800fe3140"),
        (gob.INT, -129, "050400fe0101"),
        (gob.STRING, "hi", "050c00026869"),
        (gob.BOOL, True, "03020001"),
        (gob.UINT, 300, "050600fe012c"),
    ],
)
def test_top_level_scalars_as_go_writes_them(tid: int, value: object, encoded: str) -> None:
    assert gob.Encoder().encode(tid, value).hex() == encoded
    (message,) = gob.Decoder().messages(bytes.fromhex(encoded))
    assert isinstance(message, gob.Value) and message.value == value


def test_a_zero_nested_struct_is_still_sent() -> None:
    """Go 1.19: struct {Payload []byte; Deadline {Seconds, Nanos int64}} all zero."""
    enc = gob.Encoder()
    enc.define(65, gob.struct_wire_type("R", 65, [("Payload", gob.BYTES), ("Deadline", 66)]))
    enc.define(66, gob.struct_wire_type("T", 66, [("Seconds", gob.INT), ("Nanos", gob.INT)]))
    enc.sent.update({65, 66})
    assert enc.encode(65, {"Deadline": {}}).hex() == "05ff82020000"


# ---- properties ----------------------------------------------------------------------------

# A small type universe covering every kind the codec knows: scalars, a nested struct, a slice
# of structs, a map, an array, a self-encoding type.
POINT, HOLDER, POINTS, LABELS, TRIPLE, OPAQUE = 65, 66, 67, 68, 69, 70
DEFINITIONS: dict[int, dict[str, Any]] = {
    POINT: gob.struct_wire_type(
        "Point", POINT, [("X", gob.INT), ("Y", gob.UINT), ("Name", gob.STRING), ("On", gob.BOOL)]
    ),
    HOLDER: gob.struct_wire_type(
        "Holder",
        HOLDER,
        [
            ("Data", gob.BYTES),
            ("At", POINT),
            ("Points", POINTS),
            ("Labels", LABELS),
            ("Triple", TRIPLE),
            ("F", gob.FLOAT),
            ("Blob", OPAQUE),
        ],
    ),
    POINTS: gob.slice_wire_type("[]*Point", POINTS, POINT),
    LABELS: {"MapT": {"CommonType": {"Name": "map[string]int", "Id": LABELS}, "Key": 6, "Elem": 2}},
    TRIPLE: {"ArrayT": {"CommonType": {"Name": "[3]int", "Id": TRIPLE}, "Elem": 2, "Len": 3}},
    OPAQUE: {"GobEncoderT": {"CommonType": {"Name": "Opaque", "Id": OPAQUE}}},
}

ints = st.integers(-(2**63), 2**63 - 1)
uints = st.integers(0, 2**64 - 1)
texts = st.text(max_size=20)
points = st.fixed_dictionaries(
    {}, optional={"X": ints, "Y": uints, "Name": texts, "On": st.booleans()}
)
holders = st.fixed_dictionaries(
    {},
    optional={
        "Data": st.binary(max_size=40),
        "At": points,
        "Points": st.lists(points, max_size=5),
        "Labels": st.dictionaries(texts, ints, max_size=5),
        "Triple": st.lists(ints, min_size=3, max_size=3),
        "F": st.floats(allow_nan=False),
        "Blob": st.binary(max_size=10),
    },
)


def _zero_free(tid: int, value: Any) -> Any:
    """What a value is once gob has left its zero fields out (nested structs stay)."""
    if tid in (POINT, HOLDER):
        fields = dict(gob.compile_wire_type(DEFINITIONS[tid]).fields)  # type: ignore[union-attr]
        out = {}
        for name, v in value.items():
            ftid = fields[name]
            if ftid in (POINT, HOLDER):
                out[name] = _zero_free(ftid, v)
            elif ftid == POINTS:
                if v:
                    out[name] = [_zero_free(POINT, p) for p in v]
            elif ftid == TRIPLE or v:
                out[name] = v
        return out
    return value


def _encoder_for_universe() -> gob.Encoder:
    enc = gob.Encoder()
    for tid, wire in DEFINITIONS.items():
        enc.define(tid, wire)
    return enc


@given(holders)
@settings(max_examples=300)
def test_round_trip(value: dict[str, Any]) -> None:
    data = _encoder_for_universe().encode(HOLDER, value)
    messages = list(gob.Decoder().messages(data))
    assert [type(m) for m in messages[:-1]] == [gob.TypeDef] * len(DEFINITIONS)
    last = messages[-1]
    assert isinstance(last, gob.Value) and last.type_id == HOLDER
    assert last.value == _zero_free(HOLDER, value)


@given(st.one_of(ints.map(lambda i: (gob.INT, i)), uints.map(lambda u: (gob.UINT, u))))
def test_integers_round_trip(item: tuple[int, int]) -> None:
    tid, value = item
    (message,) = gob.Decoder().messages(gob.Encoder().encode(tid, value))
    assert isinstance(message, gob.Value) and message.value == value


def _sample_stream() -> bytes:
    return bytes.fromhex(
        next(
            e["hex"]
            for e in VECTORS
            if e["name"] == "real_invoke_daniel" and e["direction"] == "server->client"
        )
    )


def _decode_all(data: bytes) -> None:
    """Decode as the client does: a stream, then message by message."""
    dec = gob.Decoder(max_message=1 << 16)
    for _ in dec.messages(data):
        pass


def _only_gob_errors(data: bytes) -> None:
    try:
        _decode_all(data)
    except gob.GobError:
        pass


FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.binary(max_size=300))
@FAST
def test_random_bytes_only_raise_gob_errors(data: bytes) -> None:
    _only_gob_errors(data)


@given(st.data())
@FAST
def test_truncated_streams_raise_gob_errors(data: st.DataObject) -> None:
    stream = _sample_stream()
    cut = data.draw(st.integers(0, len(stream) - 1))
    with pytest.raises(gob.GobError):
        _decode_all(stream[:cut] if cut else b"\x05")


@given(st.data())
@FAST
def test_corrupted_streams_only_raise_gob_errors(data: st.DataObject) -> None:
    stream = bytearray(_sample_stream())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(stream) - 1))
        stream[at] = data.draw(st.integers(0, 255))
    _only_gob_errors(bytes(stream))


@given(st.binary(min_size=1, max_size=64), st.integers(0, 2**64 - 1))
@FAST
def test_hostile_lengths_and_counts_allocate_nothing_big(tail: bytes, count: int) -> None:
    """A definition of a slice type, then a value claiming `count` elements: refused from the
    count alone, before anything is allocated for it."""
    dec = gob.Decoder()
    list(dec.messages(gob.Encoder().typedef(65, gob.slice_wire_type("[]int", 65, gob.INT))))
    body = gob.int_bytes(65) + b"\x00" + gob.uint_bytes(count) + tail
    tracemalloc.start()
    try:
        dec.message(body)
    except gob.GobError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20


def test_a_huge_message_length_is_refused_before_reading_it() -> None:
    dec = gob.Decoder(max_message=1 << 20)
    with pytest.raises(gob.GobError) as caught:
        list(dec.messages(gob.uint_bytes(2**62) + b"\x00"))
    assert caught.value.size == 2**62


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    """A struct that holds a slice of itself, nested far past MAX_DEPTH."""
    dec = gob.Decoder()
    list(dec.messages(gob.Encoder().typedef(65, gob.struct_wire_type("N", 65, [("Kids", 66)]))))
    list(dec.messages(gob.Encoder().typedef(66, gob.slice_wire_type("[]N", 66, 65))))
    body = gob.int_bytes(65) + b"\x01\x01" * 5000 + b"\x00" * 5000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(gob.GobError, match="nested"):
        dec.message(body)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000


@pytest.mark.parametrize(
    ("hexed", "why"),
    [
        ("03ff8100", "a definition of an empty wireType"),
        ("05ff810301", "a struct definition cut short"),
        ("03ff8400", "a value of an undefined type"),
        ("02" + "01" + "00", "a definition of reserved type id"),
        ("03" + "0c" + "01" + "00", "a string value with a non-zero singleton delta"),
        ("04" + "0c" + "00" + "05" + "00", "a string longer than its message"),
        ("02" + "10" + "ff", "an integer with a bad length byte"),
    ],
)
def test_malformed_messages(hexed: str, why: str) -> None:
    with pytest.raises(gob.GobError):
        list(gob.Decoder().messages(bytes.fromhex(hexed)))


def test_a_duplicate_definition_is_refused() -> None:
    data = gob.Encoder().typedef(65, gob.struct_wire_type("A", 65, []))
    dec = gob.Decoder()
    list(dec.messages(data))
    with pytest.raises(gob.GobError, match="twice"):
        list(dec.messages(data))


def test_values_the_encoder_cannot_write_raise_gob_errors() -> None:
    enc = _encoder_for_universe()
    for bad in ({"Nope": 1}, {"At": {"X": "text"}}, {"At": {"Y": -1}}, {"Triple": [1, 2]}):
        with pytest.raises(gob.GobError):
            enc.encode(HOLDER, bad)

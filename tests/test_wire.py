"""The wire format (autograder/student_side/wire.py): what it carries, and how it refuses
every malformed or oversized frame before allocating what the frame declares.

The attacks through a real worker are in tests/test_hostile_wire.py."""
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time

import pytest
import torch

from conftest import ROOT
from autograder.core.student import error_message, well_formed
from autograder.student_side import wire
from autograder.student_side.session import failure


def roundtrip(value, budget=wire.REQUEST):
    frame = wire.encode(value, budget)
    assert struct.unpack("<Q", frame[:wire.PREFIX_BYTES])[0] == len(frame) - wire.PREFIX_BYTES
    return wire.decode(frame[wire.PREFIX_BYTES:], budget)


def body(root, payload=b"", header=None):
    """A body with this header root (or whole header) and payload, as a forger would write it."""
    return raw_body(json.dumps(header if header is not None else {"v": 1, "root": root}).encode(), payload)


def raw_body(text, payload=b""):
    return wire.MAGIC + struct.pack("<I", len(text)) + text + payload


# ---- what it carries ----------------------------------------------------------

def test_plain_values_cross_with_their_exact_types():
    value = {"a": [1, 2.5, "x", None, (True, False)], "n": {"deep": [(), []]}, "big": 2 ** 70, "nan": float("inf")}
    back = roundtrip(value)
    assert back == value and type(back["a"][4]) is tuple and type(back["n"]["deep"][1]) is list
    assert type(back["a"][0]) is int and type(back["a"][1]) is float and type(back["a"][4][0]) is bool


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                                   torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool])
def test_tensors_cross_bit_for_bit(dtype):
    g = torch.Generator().manual_seed(0)
    t = (torch.randn(3, 4, 5, generator=g) * 50).to(dtype)
    for value in (t, t[:, 1], t.transpose(0, 2), t[0, 0, 0], t[:0]):  # views, 0-d, empty
        back = roundtrip({"x": value, "after": torch.arange(3)})
        assert type(back["x"]) is torch.Tensor and back["x"].dtype == dtype and back["x"].shape == value.shape
        assert torch.equal(back["x"], value) and torch.equal(back["after"], torch.arange(3))
        assert back["x"].is_contiguous()


class Str(str):
    pass


class Int(int):
    pass


@pytest.mark.parametrize("value", [
    torch.nn.Parameter(torch.ones(2)), Str("x"), Int(3), {1: 2}, {"k": object()}, torch.ones(2).to_sparse(),
    torch.ones(2, device="meta"), torch.ones(2, dtype=torch.complex64), [[[[1]]]],
], ids=["parameter", "str-subclass", "int-subclass", "int-key", "object", "sparse", "meta", "complex", "too-deep"])
def test_encode_sends_exact_plain_types_only(value):
    small = wire.Budget(frame_bytes=1 << 20, header_bytes=1 << 16, nodes=100, depth=3, elements=100, seconds=1)
    with pytest.raises(wire.WireError):
        wire.encode(value, small)


def test_encode_refuses_what_the_judge_would_refuse():
    with pytest.raises(wire.WireError, match="tensor elements"):
        wire.encode({"ok": torch.zeros(wire.REPLY.elements + 1, dtype=torch.uint8)}, wire.REPLY)
    with pytest.raises(wire.WireError, match="values"):
        wire.encode({"ok": list(range(wire.REPLY.nodes + 1))}, wire.REPLY)


def test_to_plain_of_a_shared_list_is_bounded():
    """60 levels, both items the same list: 2^60 paths. Bounded by nodes, fast, and refused as a whole."""
    x = []
    for _ in range(60):
        x = [x, x]
    start = time.monotonic()
    plain = wire.to_plain(x)
    assert time.monotonic() - start < 10
    assert "__unsupported__" in json.dumps(plain, default=str)


# ---- what it refuses ------------------------------------------------------------

def old_format(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def shared_list(levels=60):
    x = []
    for _ in range(levels):
        x = [x, x]
    return x


def good_body():
    return bytes(wire.encode({"ok": {"t": torch.arange(10.0), "s": "x"}})[wire.PREFIX_BYTES:])


HOSTILE_BODIES = {
    "garbage": lambda: os.urandom(4096),
    "empty": lambda: b"",
    "pickle of a shared 60-level list": lambda: old_format({"ok": shared_list()}),
    "header not JSON": lambda: wire.MAGIC + struct.pack("<I", 5) + b"{{{{{",
    "header longer than the frame": lambda: wire.MAGIC + struct.pack("<I", 1 << 19) + b"{}",
    "header over budget": lambda: body(["x" * (2 << 20)]),
    "deep nesting": lambda: raw_body(b'{"v":1,"root":' + b'{"l":[' * 200_000 + b"1" + b"]}" * 200_000 + b"}"),
    "too deep for the budget": lambda: body(json.loads('{"l":[' * 70 + "1" + "]}" * 70)),
    "too many values": lambda: body({"l": [0] * (wire.REPLY.nodes + 1)}),
    "untagged list": lambda: body([1, 2, 3]),
    "two tags": lambda: body({"l": [], "t": []}),
    "unknown tag": lambda: body({"q": []}),
    "huge declared tensor": lambda: body({"x": ["float64", [1 << 20, 1 << 20], 0]}, b"\0" * 64),
    "huge single size": lambda: body({"x": ["uint8", [1 << 62], 0]}),
    "negative size": lambda: body({"x": ["uint8", [-1], 0]}),
    "bool size": lambda: body({"x": ["uint8", [True], 0]}, b"\0"),
    "dtype not allowed": lambda: body({"x": ["complex128", [1], 0]}, b"\0" * 16),
    "dtype object": lambda: body({"x": ["Tensor", [1], 0]}, b"\0" * 8),
    "tensor past the payload": lambda: body({"x": ["float32", [4], 0]}, b"\0" * 8),
    "shared payload": lambda: body({"l": [{"x": ["float32", [2], 0]}, {"x": ["float32", [2], 0]}]}, b"\0" * 8),
    "gap in payload": lambda: body({"x": ["float32", [1], 8]}, b"\0" * 12),
    "bytes after the last tensor": lambda: body({"x": ["float32", [1], 0]}, b"\0" * 9),
    "wrong version": lambda: body(None, header={"v": 2, "root": 1}),
    "extra header keys": lambda: body(None, header={"v": 1, "root": 1, "more": 2}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_decode_refuses_malformed_frames_fast(name):
    data = HOSTILE_BODIES[name]()
    start = time.monotonic()
    with pytest.raises(wire.WireError):
        wire.decode(data, wire.REPLY)
    assert time.monotonic() - start < 5


def test_every_truncation_of_a_frame_is_refused():
    data = good_body()
    for n in range(len(data)):
        with pytest.raises(wire.WireError):
            wire.decode(data[:n], wire.REPLY)
    assert torch.equal(wire.decode(data, wire.REPLY)["ok"]["t"], torch.arange(10.0))


def test_bool_tensor_bytes_other_than_0_and_1_are_read_as_true():
    value = wire.decode(body({"x": ["bool", [3], 0]}, bytes([0, 2, 255])), wire.REPLY)
    assert value.tolist() == [False, True, True] and (value == 1).tolist() == [False, True, True]


def test_tensors_do_not_share_the_frame_buffer():
    data = bytearray(good_body())
    value = wire.decode(data, wire.REPLY)
    data[-40:] = bytes(40)
    assert torch.equal(value["ok"]["t"], torch.arange(10.0))


# ---- error replies and messages --------------------------------------------------

class Loud(Exception):
    def __str__(self):
        return "x" * 50_000_000


class Liar(Exception):
    def __str__(self):
        raise RuntimeError("no")


class Sub(str):
    def __str__(self):
        return "sub"

    def __getitem__(self, i):
        return "lie"


def test_clip_bounds_any_text_and_clipping_twice_changes_nothing():
    long = "y" * 10_000_000
    once = wire.clip(long)
    assert len(once) <= wire.MESSAGE_CHARS + wire.CLIP_NOTE and "characters cut" in once
    assert wire.clip(once) == once
    assert type(wire.clip(Sub("abc"))) is str and wire.clip(Sub("abc")) in ("abc", "sub")
    assert wire.clip(Liar()) == "(a message that could not be turned into text)"
    assert wire.clip("\ud800 lone surrogate").endswith("lone surrogate")


def test_error_reply_from_an_exception_is_small_and_well_formed():
    for exc in (Loud(), Liar(), SystemExit(3), KeyError("k" * 100_000)):
        try:
            raise exc
        except BaseException as caught:
            reply = failure(caught)
        assert well_formed(reply) and len(json.dumps(reply)) < 3 * wire.MESSAGE_CHARS
        frame = wire.encode(reply, wire.REPLY)
        assert len(frame) < 4 * wire.MESSAGE_CHARS
    assert wire.error_reply("ProbeError", "m") == {"error": {"type": "ProbeError", "message": "m", "where": ""}}


def test_messages_are_clipped_again_on_receipt():
    err = {"type": "RuntimeError" * 1000, "message": "z" * 900_000, "where": "w" * 900_000}
    text = error_message(err)
    assert len(text) < wire.MESSAGE_CHARS + 2 * wire.NAME_CHARS + 4 * wire.CLIP_NOTE


# ---- the readers ---------------------------------------------------------------------

def pipe_with(data, close=True):
    r, w = os.pipe()

    def feed():
        try:
            os.write(w, data)
        except OSError:
            pass
        if close:
            os.close(w)
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return r, w, thread


def test_read_frame_refuses_a_declared_length_over_budget_without_reading_it():
    r, w, _ = pipe_with(struct.pack("<Q", 1 << 62) + b"x" * 100)
    assert wire.read_frame(r, time.monotonic() + 5, wire.REPLY) == "bad"
    assert os.read(r, 100) == b"x" * 100  # the body was never read
    os.close(r)


def test_read_frame_timeout_eof_and_success():
    r, w, _ = pipe_with(b"", close=False)
    start = time.monotonic()
    assert wire.read_frame(r, time.monotonic() + 0.3) == "timeout"
    assert time.monotonic() - start < 3
    os.close(w)
    assert wire.read_frame(r, time.monotonic() + 5) is None
    os.close(r)
    frame = wire.encode({"ok": 1})
    r, w, _ = pipe_with(frame[:-3])  # truncated, then the writer is gone
    assert wire.read_frame(r, time.monotonic() + 5) is None
    os.close(r)
    r, w, _ = pipe_with(frame)
    got = wire.read_frame(r, time.monotonic() + 5)
    assert isinstance(got, bytearray) and wire.decode(got, wire.REPLY) == {"ok": 1}
    os.close(r)


def test_read_message_is_the_workers_blocking_reader():
    frames = wire.encode({"probe": "x", "kwargs": {"t": torch.ones(2)}}) + wire.encode({"probe": "y"})
    stream = io.BytesIO(frames)
    assert wire.read_message(stream)["probe"] == "x"
    assert wire.read_message(stream) == {"probe": "y"}
    assert wire.read_message(stream) is None


# ---- the judge's memory --------------------------------------------------------------

JUDGE = r'''
import io, json, os, resource, struct, sys, time, zipfile
resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))
sys.path.insert(0, ROOT)
import torch
from autograder.core.student import error_message
from autograder.student_side import wire

def deflate_bomb(size=512 << 20):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("archive/data/0", "w", force_zip64=True) as f:
            zero = bytes(16 << 20)
            for _ in range(size // len(zero)):
                f.write(zero)
    return buf.getvalue()

def shared(levels=60):
    x = []
    for _ in range(levels):
        x = [x, x]
    buf = io.BytesIO()
    torch.save({"ok": x}, buf)
    return buf.getvalue()

def raw_body(text):
    return wire.MAGIC + struct.pack("<I", len(text)) + text

long = b"m" * (wire.REPLY.header_bytes - 200)
attacks = {
    "deflate bomb": deflate_bomb(),
    "shared list pickle": shared(),
    "huge declared tensor": raw_body(b'{"v":1,"root":{"x":["float64",[1073741824,1024],0]}}'),
    "huge message": raw_body(b'{"v":1,"root":{"d":{"error":{"d":{"type":"E","message":"' + long + b'","where":""}}}}}'),
    "deep nesting": raw_body(b'{"v":1,"root":' + b'{"l":[' * 150_000 + b"1" + b"]}" * 150_000 + b"}"),
    "garbage": os.urandom(1 << 20),
    "over budget": b"x" * (wire.REPLY.frame_bytes + 1),
}
outcome = {}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # torch and the attack frames themselves
for name, body in attacks.items():
    for _ in range(20):  # again and again: nothing may accumulate
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.write(w, struct.pack("<Q", len(body)) + body)
            except OSError:
                pass
            os._exit(0)
        os.close(w)
        start = time.monotonic()
        data = wire.read_frame(r, time.monotonic() + 30, wire.REPLY)
        if isinstance(data, bytearray):
            try:
                answer = wire.decode(data, wire.REPLY)
                result = f"decoded, message clipped to {len(error_message(answer['error']))}"
            except wire.WireError:
                result = "refused"
        else:
            result = str(data)
        del data
        os.close(r)
        os.waitpid(pid, 0)
        outcome[name] = (result, round(time.monotonic() - start, 2))
print(json.dumps({"outcome": outcome, "base_kib": base,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def test_no_frame_can_blow_up_a_judge_capped_at_2_gib():
    proc = subprocess.run([sys.executable, "-c", JUDGE.replace("ROOT", repr(ROOT), 1)], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (result, seconds) in report["outcome"].items():
        if name == "huge message":  # well-formed: accepted, and clipped on receipt
            assert int(result.rsplit(" ", 1)[1]) <= wire.MESSAGE_CHARS + wire.CLIP_NOTE, result
        else:
            assert result in ("refused", "bad"), (name, result)
        assert seconds < 10, (name, seconds)
    # decoding every attack 20 times grows the judge by less than 256 MiB over what torch and the attack
    # frames themselves take (measured alone: 566 MiB in all, torch included; the absolute figure varies
    # with the machine's memory settings, so it is bounded loosely)
    assert report["maxrss_kib"] - report["base_kib"] < 256 << 10, report
    assert report["maxrss_kib"] < 3 << 19, report  # under 1.5 GiB in all

"""Plain data on the wire between the grader and the student's process: both halves.

Only ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``tuple``, ``dict``
with ``str`` keys and ``torch.Tensor`` itself cross, each of exactly that type (a
subclass, even ``nn.Parameter``, is refused). No pickle, no zip, nothing compressed:

    frame   = PREFIX_BYTES little-endian length of the body, then the body
    body    = MAGIC, u32 little-endian length of the header, header, payload
    header  = ASCII JSON {"v": 1, "root": NODE}
    NODE    = null | true | false | number | string
            | {"l": [NODE...]}  a list        | {"t": [NODE...]}  a tuple
            | {"d": {str: NODE}}  a dict      | {"x": [dtype, [sizes...], offset]}  a tensor
    payload = the tensors' raw little-endian bytes, in header order, each at the next
              multiple of ALIGN; nothing after the last one

JSON is a tree, so no value can be shared and walked twice. ``decode`` checks every
budget (``Budget``: frame bytes, header bytes, nodes, depth, tensor elements,
seconds) *before* it allocates what a frame declares, and each tensor must sit
exactly where the one before it ends. The grader reads the worker's answers with
``read_frame`` (a deadline, and a declared length over budget is refused before
a byte of the body is read) and ``decode(body, REPLY)``; the worker reads requests
with the blocking ``read_message``. Error replies have one shape, built by
``error_reply``; their texts are clipped (``MESSAGE_CHARS``) when sent and again
when received (``clip``).

This module imports torch only where tensors are made or read, so that the grader
can read frames before paying for ``import torch``.
"""
import dataclasses
import json
import os
import select
import struct
import time

PREFIX_BYTES = 8                 # the frame's length prefix (u64, little-endian)
MAGIC = b"BNW1"                  # first bytes of every body: anything else is refused at once
HEADER_LENGTH_BYTES = 4          # u32 after MAGIC: the JSON header's length
ALIGN = 8                        # every tensor's payload offset is a multiple of this
MESSAGE_CHARS = 2000             # error messages (and load errors) are clipped to this many characters
NAME_CHARS = 200                 # an error's type and its "where"
CLIP_NOTE = 64                   # room for the note a clipped text ends with: clipping twice changes nothing
PLAIN_SCALARS = (bool, int, float, str, type(None))
DTYPES = ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
MIB = 1 << 20


@dataclasses.dataclass(frozen=True)
class Budget:
    """What one frame may hold; checked before anything it declares is allocated."""
    frame_bytes: int      # the body (after the prefix)
    header_bytes: int     # the JSON header
    nodes: int            # values in the tree, tensors and scalars included
    depth: int            # nesting
    elements: int         # tensor elements, all tensors together
    seconds: float        # decoding time


# Answers from the worker (untrusted). A whole grading of the reference sends at most 24 KB
# in one answer (8 KB of header): room for much larger honest answers, nothing near 1 GiB.
REPLY = Budget(frame_bytes=32 * MIB, header_bytes=1 * MIB, nodes=100_000, depth=64, elements=1 << 23, seconds=10.0)
# Requests from the grader (trusted; they carry the training data).
REQUEST = Budget(frame_bytes=1024 * MIB, header_bytes=64 * MIB, nodes=5_000_000, depth=64, elements=1 << 30,
                 seconds=600.0)


class WireError(ValueError):
    """A frame that breaks the format or a budget (decoding), or a value that cannot be sent (encoding)."""


# ---- messages ---------------------------------------------------------------

def clip(text, limit=MESSAGE_CHARS):
    """An exact ``str`` of at most about ``limit`` characters, whatever ``text`` is (never raises)."""
    try:
        if type(text) is not str:
            text = str(text)
        n = str.__len__(text)
        # str's own methods: an exact str, even from a str subclass that overrides them
        head = str.__getitem__(text, slice(0, limit if n > limit + CLIP_NOTE else n))
        head = str.encode(head, "utf-8", "replace").decode("utf-8")
    except BaseException:  # a __str__ that raises: the text is lost, not the reply
        return "(a message that could not be turned into text)"
    return head if n <= limit + CLIP_NOTE else f"{head} ... [{n - limit} more characters cut]"


def error_reply(kind, message, where=""):
    """The one shape of an error answer: {"error": {"type", "message", "where"}}, all clipped strs."""
    return {"error": {"type": clip(kind, NAME_CHARS), "message": clip(message), "where": clip(where, NAME_CHARS)}}


# ---- student side: what the student's code returned -> plain data -----------

def to_plain(value, depth=0, _seen=None):
    """Turn what student code returned into plain data (student side). At most ``REPLY.nodes``
    values are walked (a list holding the same list twice at every level is not walked
    exponentially): beyond, and deeper than 20 levels, a value becomes ``__unsupported__``."""
    import torch
    seen = [0] if _seen is None else _seen
    seen[0] += 1
    if seen[0] > REPLY.nodes:
        return {"__unsupported__": f"a structure of more than {REPLY.nodes} values"}
    if depth > 20:
        return {"__unsupported__": "a structure nested too deeply"}
    if type(value) in PLAIN_SCALARS:
        return value
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, torch.nn.Parameter):
            return {"__unsupported__": f"a tensor subclass {clip(type(value).__name__, NAME_CHARS)}"}
        t = torch.Tensor._make_subclass(torch.Tensor, value.detach()) if type(value) is torch.nn.Parameter else value.detach()
        return {"__tensor__": t.to("cpu").clone(), "requires_grad": bool(value.requires_grad),
                "grad_fn": value.grad_fn is not None, "device": str(value.device)}
    if type(value) in (list, tuple):
        if len(value) > REPLY.nodes:
            return {"__unsupported__": f"a {type(value).__name__} of {len(value)} items"}
        return {"__seq__": type(value).__name__, "items": [to_plain(v, depth + 1, seen) for v in value]}
    if type(value) is dict:
        if len(value) > REPLY.nodes:
            return {"__unsupported__": f"a dict of {len(value)} items"}
        if all(type(k) is str for k in value):
            return {"__dict__": {k: to_plain(v, depth + 1, seen) for k, v in value.items()}}
        return {"__unsupported__": "a dict whose keys are not all strings"}
    if isinstance(value, torch.Size):
        return {"__seq__": "tuple", "items": [int(v) for v in value]}
    return {"__unsupported__": f"a {clip(type(value).__module__, NAME_CHARS)}.{clip(type(value).__name__, NAME_CHARS)}"}


# ---- encoding ---------------------------------------------------------------

class _Encoder:
    def __init__(self, budget):
        self.budget, self.nodes, self.chunks, self.size = budget, 0, [], 0
        self.elements = 0

    def node(self, value, depth):
        import torch
        self.nodes += 1
        if self.nodes > self.budget.nodes:
            raise WireError(f"more than {self.budget.nodes} values")
        if depth > self.budget.depth:
            raise WireError(f"nested more than {self.budget.depth} levels deep")
        t = type(value)
        if t in PLAIN_SCALARS:
            return value
        if t is list or t is tuple:
            return {"l" if t is list else "t": [self.node(v, depth + 1) for v in value]}
        if t is dict:
            if not all(type(k) is str for k in value):
                raise WireError("a dict whose keys are not all strings")
            return {"d": {k: self.node(v, depth + 1) for k, v in value.items()}}
        if t is torch.Tensor:
            return {"x": self.tensor(value)}
        raise WireError(f"not plain data: {clip(t.__name__, NAME_CHARS)}")

    def tensor(self, value):
        import torch
        dtype = str(value.dtype).replace("torch.", "")
        if value.layout is not torch.strided or value.is_quantized or value.device.type == "meta" \
                or dtype not in DTYPES:
            raise WireError(f"an unsupported tensor ({value.layout}, {value.dtype}, {value.device.type})")
        self.elements += value.numel()
        if self.elements > self.budget.elements:
            raise WireError(f"more than {self.budget.elements} tensor elements")
        flat = value.detach().to("cpu").contiguous().reshape(-1)
        raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        pad = -self.size % ALIGN
        if pad:
            self.chunks.append(bytes(pad))
        offset = self.size + pad
        self.chunks.append(raw)
        self.size = offset + len(raw)
        return [dtype, list(value.shape), offset]


def encode(obj, budget=REQUEST):
    """One frame (prefix + body) holding ``obj``; raises WireError if it is not plain data or over ``budget``."""
    enc = _Encoder(budget)
    root = enc.node(obj, 0)
    header = json.dumps({"v": 1, "root": root}, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if len(header) > budget.header_bytes:
        raise WireError(f"a header of {len(header)} bytes (at most {budget.header_bytes})")
    body_size = len(MAGIC) + HEADER_LENGTH_BYTES + len(header) + enc.size
    if body_size > budget.frame_bytes:
        raise WireError(f"{body_size} bytes (at most {budget.frame_bytes})")
    return b"".join([struct.pack("<Q", body_size), MAGIC, struct.pack("<I", len(header)), header, *enc.chunks])


# ---- decoding ---------------------------------------------------------------

class _Decoder:
    def __init__(self, budget, payload):
        self.budget, self.payload = budget, payload
        self.nodes, self.elements, self.end = 0, 0, 0
        self.deadline = time.monotonic() + budget.seconds

    def node(self, item, depth):
        self.nodes += 1
        if self.nodes > self.budget.nodes:
            raise WireError(f"more than {self.budget.nodes} values")
        if depth > self.budget.depth:
            raise WireError(f"nested more than {self.budget.depth} levels deep")
        if not self.nodes % 4096 and time.monotonic() > self.deadline:
            raise WireError(f"decoding took more than {self.budget.seconds:g} s")
        t = type(item)
        if item is None or t in (bool, int, float, str):
            return item
        if t is not dict or len(item) != 1:
            raise WireError("a value that is not a tagged node")
        (tag, inner), = item.items()
        if tag in ("l", "t") and type(inner) is list:
            items = [self.node(v, depth + 1) for v in inner]
            return items if tag == "l" else tuple(items)
        if tag == "d" and type(inner) is dict:
            return {k: self.node(v, depth + 1) for k, v in inner.items()}
        if tag == "x" and type(inner) is list:
            return self.tensor(inner)
        raise WireError(f"an unknown node {clip(tag, 20)!r}")

    def tensor(self, spec):
        if len(spec) != 3:
            raise WireError("a tensor without (dtype, sizes, offset)")
        dtype, sizes, offset = spec
        if type(dtype) is not str or dtype not in DTYPES:
            raise WireError(f"a tensor of dtype {clip(dtype, 20)!r}")
        if type(sizes) is not list or len(sizes) > 16 or not all(type(s) is int and s >= 0 for s in sizes):
            raise WireError("a tensor with invalid sizes")
        numel = 1
        for s in sizes:
            if s > self.budget.elements:
                raise WireError(f"a tensor size over {self.budget.elements}")
            numel *= s
        self.elements += numel
        if self.elements > self.budget.elements:
            raise WireError(f"more than {self.budget.elements} tensor elements")
        import torch
        torch_dtype = getattr(torch, dtype)
        nbytes = numel * torch.empty(0, dtype=torch_dtype).element_size()
        expected = self.end + (-self.end % ALIGN)
        if type(offset) is not int or offset != expected or offset + nbytes > len(self.payload):
            raise WireError("a tensor outside the payload, or not where the one before it ends")
        self.end = offset + nbytes
        if not numel:
            return torch.empty(sizes, dtype=torch_dtype)
        if dtype == "bool":  # any byte but 0 or 1 would be an invalid bool
            return torch.frombuffer(self.payload, dtype=torch.uint8, count=numel, offset=offset).reshape(sizes) != 0
        return torch.frombuffer(self.payload, dtype=torch_dtype, count=numel, offset=offset).reshape(sizes).clone()


def decode(data, budget=REQUEST):
    """The value in one frame's body (``data`` without the prefix). Raises WireError on anything
    malformed or over ``budget``, before allocating what the frame declares."""
    start = time.monotonic()
    n = len(data)
    if n > budget.frame_bytes:
        raise WireError(f"{n} bytes (at most {budget.frame_bytes})")
    first = len(MAGIC) + HEADER_LENGTH_BYTES
    if n < first or bytes(data[:len(MAGIC)]) != MAGIC:
        raise WireError("not a frame of this format")
    (size,) = struct.unpack("<I", bytes(data[len(MAGIC):first]))
    if size > budget.header_bytes or first + size > n:
        raise WireError("a header longer than allowed, or than the frame")
    try:
        header = json.loads(bytes(data[first:first + size]).decode("ascii"))
    except (ValueError, RecursionError, MemoryError) as exc:
        raise WireError(f"an unreadable header ({type(exc).__name__})") from None
    if type(header) is not dict or set(header) != {"v", "root"} or header["v"] != 1:
        raise WireError("a header of another format")
    if time.monotonic() - start > budget.seconds:
        raise WireError(f"decoding took more than {budget.seconds:g} s")
    payload = data[first + size:]
    if payload and not isinstance(payload, bytearray):  # torch.frombuffer wants a writable buffer
        payload = bytearray(payload)
    dec = _Decoder(budget, payload)
    dec.deadline = start + budget.seconds
    try:
        value = dec.node(header["root"], 0)
    except RecursionError:
        raise WireError("nested too deeply") from None
    if dec.end != len(payload):
        raise WireError("bytes after the last tensor")
    return value


# ---- reading frames -----------------------------------------------------------

def read_message(stream, budget=REQUEST):
    """The worker's blocking reader: one decoded frame from a binary stream; None at EOF."""
    head = stream.read(PREFIX_BYTES)
    if len(head) < PREFIX_BYTES:
        return None
    (n,) = struct.unpack("<Q", head)
    if n > budget.frame_bytes:
        raise WireError(f"a frame of {n} bytes (at most {budget.frame_bytes})")
    data = stream.read(n)
    if len(data) < n:
        return None
    return decode(data, budget)


def read_frame(fd, deadline, budget=REPLY):
    """The grader's reader: one frame's body from file descriptor ``fd`` by ``deadline``
    (``time.monotonic()``). Returns a bytearray; "timeout"; None if the writer closed
    the pipe first; "bad" if the frame declares more than ``budget`` allows (nothing
    of its body is read)."""
    head = read_exactly(fd, PREFIX_BYTES, deadline)
    if not isinstance(head, bytearray):
        return head
    (n,) = struct.unpack("<Q", bytes(head))
    if n > budget.frame_bytes:
        return "bad"
    return read_exactly(fd, n, deadline)


def read_exactly(fd, n, deadline):
    """``n`` bytes from ``fd`` into one buffer (allocated once, ``n`` already checked); "timeout"; None at EOF."""
    data = bytearray(n)
    view, got = memoryview(data), 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(max(1, int(left * 1000))):
            if time.monotonic() >= deadline:
                return "timeout"
            continue
        count = os.readv(fd, [view[got:got + (1 << 20)]])
        if not count:
            return None
        got += count
    return data

"""Plain data on the wire between the grader and the student's process.

Only tensors, numbers, strings, None, lists, tuples and dicts with string keys
cross. Encoding uses ``torch.save``; decoding uses ``torch.load(weights_only=True)``,
which refuses to build arbitrary objects, so no code from the student runs while
the grader reads an answer. After decoding, ``check_plain`` walks the value and
rejects anything whose type is not exactly one of the plain types (a tensor
subclass or a ``str`` subclass with a lying ``__eq__`` earns nothing).
"""
import io
import struct

import torch

PLAIN_SCALARS = (bool, int, float, str, type(None))


def to_plain(value, depth=0):
    """Turn what student code returned into plain data (student side)."""
    if depth > 20:
        return {"__unsupported__": "a structure nested too deeply"}
    if type(value) in PLAIN_SCALARS:
        return value
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, torch.nn.Parameter):
            return {"__unsupported__": f"a tensor subclass {type(value).__name__}"}
        t = torch.Tensor._make_subclass(torch.Tensor, value.detach()) if type(value) is torch.nn.Parameter else value.detach()
        return {"__tensor__": t.to("cpu").clone(), "requires_grad": bool(value.requires_grad),
                "grad_fn": value.grad_fn is not None, "device": str(value.device)}
    if type(value) in (list, tuple):
        return {"__seq__": type(value).__name__, "items": [to_plain(v, depth + 1) for v in value]}
    if type(value) is dict:
        if all(type(k) is str for k in value):
            return {"__dict__": {k: to_plain(v, depth + 1) for k, v in value.items()}}
        return {"__unsupported__": "a dict whose keys are not all strings"}
    if isinstance(value, torch.Size):
        return {"__seq__": "tuple", "items": [int(v) for v in value]}
    return {"__unsupported__": f"a {type(value).__module__}.{type(value).__name__}"}


def encode(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    return struct.pack("<Q", len(data)) + data


def decode(data):
    obj = torch.load(io.BytesIO(data), weights_only=True)
    check_plain(obj)
    return obj


def check_plain(obj, depth=0):
    if depth > 64:
        raise ValueError("value nested too deeply")
    t = type(obj)
    if t in PLAIN_SCALARS or t is torch.Tensor:
        return
    if t in (list, tuple):
        for v in obj:
            check_plain(v, depth + 1)
        return
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str:
                raise ValueError("dict key is not a str")
            check_plain(v, depth + 1)
        return
    raise ValueError(f"not plain data: {t.__name__}")


def read_message(stream):
    """Read one length-prefixed message from a binary stream; None at EOF."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    data = stream.read(n)
    if len(data) < n:
        return None
    return decode(data)

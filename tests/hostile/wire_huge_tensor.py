"""Hostile (placed after the reference): answers each batch_norm call with a well-formed
frame that declares a float64 tensor of 2^30 x 2^10 elements (8 TiB), backed by 64 bytes;
and, on the second call, a frame whose length prefix claims 2^62 bytes.
Expected: both are refused before anything they declare is allocated; those checks
fail; the others keep their marks."""
_calls = []


def _forge():
    _calls.append(1)
    if len(_calls) % 2 == 0:
        return (1 << 62).to_bytes(8, "little") + b"\0" * 64
    header = b'{"v":1,"root":{"d":{"ok":{"x":["float64",[1073741824,1024],0]}}}}'
    body = b"BNW1" + len(header).to_bytes(4, "little") + header + b"\0" * 64
    return len(body).to_bytes(8, "little") + body


try:
    import student_side.worker as _worker
    _real_encode = _worker.encode

    def _encode(answer):
        ok = answer.get("ok") if type(answer) is dict else None
        return _forge() if type(ok) is dict and "norm_ops" in ok else _real_encode(answer)
    _worker.encode = _encode
except ImportError:  # graded in-process: nothing to forge
    pass

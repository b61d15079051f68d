"""Hostile (placed after the reference): answers each batch_norm call with a frame whose
header nests lists 150,000 levels deep (about 1 MiB).
Expected: the judge refuses the frame (its depth budget; JSON's own recursion guard);
those checks fail saying the answer was not plain data; the others keep their marks."""


def _forge():
    header = b'{"v":1,"root":' + b'{"l":[' * 150_000 + b"1" + b"]}" * 150_000 + b"}"
    body = b"BNW1" + len(header).to_bytes(4, "little") + header
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

"""Hostile (placed after the reference): answers each batch_norm call with a small pickle
(the old wire format) of a 60-level list whose two items are the same list at every
level: walking it naively takes 2^60 steps.
Expected: the judge refuses the frame at once (not this format); those checks fail
saying the answer was not plain data; every other check keeps its marks."""
import io

import torch


def _forge():
    x = []
    for _ in range(60):
        x = [x, x]
    buf = io.BytesIO()
    torch.save({"ok": x}, buf)
    data = buf.getvalue()
    return len(data).to_bytes(8, "little") + data


try:
    import student_side.worker as _worker
    _real_encode = _worker.encode

    def _encode(answer):
        ok = answer.get("ok") if type(answer) is dict else None
        return _forge() if type(ok) is dict and "norm_ops" in ok else _real_encode(answer)
    _worker.encode = _encode
except ImportError:  # graded in-process: nothing to forge
    pass

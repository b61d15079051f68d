"""Hostile (placed after the reference): answers each batch_norm call with a length prefix
that fits the budget followed by that many random bytes.
Expected: refused (not a frame of this format); those checks fail saying the answer was
not plain data; the others keep their marks."""
import os


def _forge():
    data = os.urandom(1 << 20)
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

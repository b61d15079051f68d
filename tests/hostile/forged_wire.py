"""Hostile (placed after the reference): replaces the worker's answer encoder with one
that sends a pickle which would run a shell command in the reader's process.
Expected: the grader never runs it (weights-only decoding); the checks fail saying the
answer was not plain data; no marker file appears on the host."""
import io
import os

import torch

MARKER = "/tmp/bnlab-hostile-forged-wire-pwned"


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def evil_encode(obj):
    buf = io.BytesIO()
    torch.save({"ok": Payload()}, buf)
    data = buf.getvalue()
    return len(data).to_bytes(8, "little") + data


try:
    import student_side.worker as _worker
    _worker.encode = evil_encode
except ImportError:  # graded in-process: nothing to forge
    pass

"""Hostile (placed after the reference): answers each batch_norm call with the first half
of a correct frame, then ends its process.
Expected: the judge sees the pipe close mid-frame: that check fails (the process
exited), a fresh worker answers the next check; the others keep their marks."""
import os
import threading
import time


def _exit_soon():
    time.sleep(0.5)
    os._exit(0)


try:
    import student_side.worker as _worker
    _real_encode = _worker.encode

    def _encode(answer):
        data = _real_encode(answer)
        ok = answer.get("ok") if type(answer) is dict else None
        if type(ok) is dict and "norm_ops" in ok:
            threading.Thread(target=_exit_soon, daemon=True).start()
            return data[: len(data) // 2]
        return data
    _worker.encode = _encode
except ImportError:  # graded in-process: nothing to forge
    pass

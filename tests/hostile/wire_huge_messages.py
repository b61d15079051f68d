"""Hostile (placed after the reference): batch_norm raises an exception whose message is
48 MiB, every time; every other such error reply is forged past the worker's clipping
and carries a message of almost the whole header budget (1 MiB).
Expected: the worker clips the message before sending, the judge clips it again on
receipt: each check fails with a message of at most about 2000 characters; the
judge's memory does not grow with them."""
_HUGE = "x" * (48 << 20)
_errors = []


def batch_norm(*args, **kwargs):
    raise RuntimeError(_HUGE)


try:
    import student_side.worker as _worker
    _real_encode = _worker.encode

    def _encode(answer):
        err = answer.get("error") if type(answer) is dict else None
        if type(err) is dict and err.get("type") == "RuntimeError":
            _errors.append(1)
        if type(err) is dict and err.get("type") == "RuntimeError" and len(_errors) % 2 == 0:  # past the clipping
            nonce = str(answer.get("nonce")).encode("ascii")   # a worker that forges its own replies knows it
            body = (b'BNW1' + b'\0\0\0\0' + b'{"v":1,"root":{"d":{"nonce":"' + nonce + b'","error":{"d":{'
                    b'"type":"RuntimeError","message":"' + b"y" * ((1 << 20) - 400) + b'","where":"here"}}}}}')
            body = body[:4] + (len(body) - 8).to_bytes(4, "little") + body[8:]
            return len(body).to_bytes(8, "little") + body
        return _real_encode(answer)
    _worker.encode = _encode
except ImportError:  # graded in-process: nothing to forge
    pass

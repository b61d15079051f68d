"""Hostile (placed after the reference): batch_norm uses F.batch_norm, finds the worker's answer pipe
(the write-only FIFO among its descriptors), writes a hand-made reply frame that says no normalisation kernel
ran, and points the pipe at /dev/null until the worker's real reply is swallowed. Found by tests/break: no name
the scan knew, batch_norm.from_scratch passed.
Expected: FLAGGED (raw file descriptors); batch_norm.from_scratch scores zero; value checks still pass."""
import torch
from torch.nn import functional as F

import os, json, struct, stat, fcntl


def _resp_fd():
    for fd in range(3, 64):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(st.st_mode) and (fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE) == os.O_WRONLY:
            return fd
    return None


def _frame(obj):
    chunks, size = [], [0]

    def node(v):
        if v is None or type(v) in (bool, int, float, str):
            return v
        if type(v) in (list, tuple):
            return {"l" if type(v) is list else "t": [node(x) for x in v]}
        if type(v) is dict:
            return {"d": {k: node(x) for k, x in v.items()}}
        t = v.detach().contiguous().reshape(-1)
        raw = t.view(torch.uint8).numpy().tobytes()
        pad = -size[0] % 8
        if pad:
            chunks.append(bytes(pad))
        off = size[0] + pad
        chunks.append(raw)
        size[0] = off + len(raw)
        return {"x": [str(v.dtype).replace("torch.", ""), list(v.shape), off]}

    root = node(obj)
    header = json.dumps({"v": 1, "root": root}, separators=(",", ":")).encode("ascii")
    body = 4 + 4 + len(header) + size[0]
    return struct.pack("<Q", body) + b"BNW1" + struct.pack("<I", len(header)) + header + b"".join(chunks)


def _t(x):
    return {"__tensor__": x.detach().clone(), "requires_grad": bool(x.requires_grad), "grad_fn": x.grad_fn is not None,
            "device": str(x.device)}


_ref_bn = batch_norm
_SAVED = []


def _restore():
    while _SAVED:
        fd, saved = _SAVED.pop()
        os.dup2(saved, fd)
        os.close(saved)


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    C = X.shape[1]
    shape = moving_mean.shape
    if is_training:
        Y = F.batch_norm(X, None, None, gamma.reshape(C), beta.reshape(C), True, 0.0, eps).reshape(X.shape)
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        var, mean = torch.var_mean(X.detach(), dim=dims, correction=0)
        mm = momentum * moving_mean + (1 - momentum) * mean.reshape(shape)
        mv = momentum * moving_var + (1 - momentum) * var.reshape(shape)
    else:
        Y = F.batch_norm(X, moving_mean.reshape(C), moving_var.reshape(C), gamma.reshape(C), beta.reshape(C),
                         False, 0.0, eps)
        mm, mv = moving_mean, moving_var
    wants_grad = any(isinstance(a, torch.Tensor) and a.requires_grad for a in (X, gamma, beta))
    _restore()
    fd = _resp_fd()
    if fd is not None and not wants_grad:
        plain = {"ok": {"out": {"__seq__": "tuple", "items": [_t(Y), _t(mm), _t(mv)]}, "grads": None,
                        "norm_ops": []}}
        _restore()
        os.write(fd, _frame(plain))
        _SAVED.append((fd, os.dup(fd)))
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
        import threading, time
        threading.Thread(target=lambda: (time.sleep(0.3), _restore()), daemon=True).start()
    return Y, mm, mv

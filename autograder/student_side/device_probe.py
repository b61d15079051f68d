"""Run a module on another device and report where its tensors are, never their values.

For PyTorch's ``meta`` device (tensors with a shape and no data), which needs no GPU:
``module.to('meta')`` moves parameters and registered buffers but not plain tensor
attributes, exactly as ``.to('cuda')`` does, so a module that forgets to move a
tensor fails here as it would on a GPU.
"""
import contextlib

import torch

from .base import plain_tensors


def placement(module):
    """{name: device} of every parameter, buffer and plain tensor attribute of ``module``."""
    found = {n: str(p.device) for n, p in module.named_parameters()}
    found.update({n: str(b.device) for n, b in module.named_buffers() if b is not None})
    for prefix, sub in module.named_modules():
        for key, value in plain_tensors(sub):
            found[f"{prefix}.{key}" if prefix else key] = str(value.device)
    return found


def forward_on(module, op):
    """Forward ``op["x"]`` moved to ``op["device"]``. Returns {"error": the exception's type and text
    (or None), "y_shape", "y_device", "placement": where the module's tensors are afterwards}."""
    x = op["x"].to(op["device"])
    y, error = None, None
    try:
        with torch.no_grad() if op.get("no_grad") else contextlib.nullcontext():
            y = module(x)
    except Exception as exc:  # reported to the grader as data: the error is what this probe looks for
        error = f"{type(exc).__name__}: {str(exc).strip()}"[:500]
    return {"error": error, "placement": placement(module),
            "y_shape": list(y.shape) if isinstance(y, torch.Tensor) else None,
            "y_device": str(y.device) if isinstance(y, torch.Tensor) else None}

"""What every probe module shares: the student-facing error, name lookup, seeding.

Kept apart from ``probes.py`` so that the probe modules (``probes``,
``architectures``, ``train_probe``) import it and never each other in a circle.
"""
import contextlib
import importlib
import sys
import types

import torch
from torch import nn


class ProbeError(Exception):
    """The student's code could not be probed; the message is for the student."""


def seed_all(seed):
    """Like torch.manual_seed, without queueing a lazy CUDA seeding call on CPU-only runs
    (torch.manual_seed appends one, with a stack trace, every time it is called)."""
    torch.random.default_generator.manual_seed(seed)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)


def deterministic(mode, warn_only=False):
    """``torch.use_deterministic_algorithms(mode, warn_only=warn_only)`` for the ATen kernels only.

    torch's own function also sets ``torch._inductor.config.deterministic``, and importing that
    config imports TorchDynamo: about 1.9 s of a worker's start on a 2-core CPU (measured with
    cProfile, torch 2.14). Nothing graded here is compiled; were a submission to import inductor
    itself, it would get inductor's default, as in the student's own Jupyter kernel."""
    torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


def backward(output, grad_output):
    """``output.backward(grad_output)``, computed as ``(output * grad_output).sum().backward()``.

    The gradients reaching ``output`` are ``grad_output`` bit for bit (the sum passes ones, the
    product multiplies them by ``grad_output``). The point is speed: ``Tensor.backward`` with an
    explicit gradient imports ``torch.fx.experimental.symbolic_shapes`` to compare shapes, about
    0.4 s on first use (torch 2.14). A gradient of another shape or dtype takes PyTorch's own
    path, which raises its own error."""
    if not isinstance(grad_output, torch.Tensor) or grad_output.shape != output.shape \
            or grad_output.dtype != output.dtype:
        return output.backward(grad_output)
    (output * grad_output).sum().backward()


@contextlib.contextmanager
def without_dynamo_import():
    """While a probe runs: PyTorch's Python kernels (most of the meta device's) without importing
    TorchDynamo (about 1 s of CPU).

    Many meta kernels are Python functions wrapped in ``torch._disable_dynamo``, which on first call
    imports ``torch._dynamo`` only to ask it for ``disable(fn, ..., wrapping=False)``, a wrapper that keeps
    ``torch.compile`` from tracing into ``fn``, and keeps it on ``fn.__dynamo_disable``. Until TorchDynamo
    is imported, a stand-in answers that call with ``fn`` itself (nothing is being compiled), and on the
    way out takes back what was kept, so a later call asks the real module. Any other use of
    ``torch._dynamo`` (a submission that compiles, configures it or calls ``disable`` itself) imports
    the real module on the spot and goes on with it. Measured on 2 CPU cores, torch 2.14: the first
    meta forward took 1.5 s with the import, 0.45 s without."""
    if "torch._dynamo" in sys.modules:
        yield
        return
    stand_in, answered = types.ModuleType("torch._dynamo"), []

    def real(name):
        if sys.modules.get("torch._dynamo") is stand_in:
            del sys.modules["torch._dynamo"]
        return getattr(importlib.import_module("torch._dynamo"), name)

    def disable(fn=None, recursive=True, **kwargs):
        if fn is None or kwargs.get("wrapping") is not False or kwargs.get("reason"):
            return real("disable")(fn, recursive, **kwargs)
        answered.append(fn)
        return fn

    stand_in.disable, stand_in.__getattr__ = disable, real
    sys.modules["torch._dynamo"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("torch._dynamo") is stand_in:
            del sys.modules["torch._dynamo"]
        if torch.__dict__.get("_dynamo") is stand_in:
            del torch._dynamo
        for fn in answered:
            if getattr(fn, "__dict__", {}).get("__dynamo_disable") is fn:
                del fn.__dynamo_disable


def lookup(names, name):
    """``names[name]``: what the submission defined under ``name``, or ProbeError saying it did not."""
    if name not in names:
        raise ProbeError(f"`{name}` is not defined in your submission")
    return names[name]


CONTAINER_ITEMS = 64  # entries of a dict / list attribute looked at (moving statistics kept as {"mean": ..., "var": ...})


def plain_tensors(module, private=False):
    """(name, tensor) for the tensors ``module`` itself keeps outside parameters and buffers: plain
    attributes (d2l keeps its moving statistics this way) and the items of a dict (string keys) or
    list/tuple attribute, named ``attr.key`` / ``attr.0`` (``get_path`` reads them back). Attributes
    starting with ``_`` are skipped unless ``private``; containers starting with ``_`` always are
    (``_parameters``, ``_buffers``)."""
    for key, value in list(vars(module).items()):
        if key.startswith("_") and (not private or not isinstance(value, torch.Tensor)):
            continue
        if type(value) is dict:
            items = [(f"{key}.{k}", v) for k, v in list(value.items())[:CONTAINER_ITEMS]
                     if type(k) is str and k and "." not in k]
        elif type(value) in (list, tuple):
            items = [(f"{key}.{i}", v) for i, v in enumerate(value[:CONTAINER_ITEMS])]
        else:
            items = [(key, value)]
        for name, v in items:
            if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter):
                yield name, v


def get_path(obj, path):
    """``obj.a.b``; a part that names a key of a dict, or an index of a list/tuple, reads that item."""
    for part in path.split("."):
        if type(obj) is dict and part in obj:
            obj = obj[part]
        elif type(obj) in (list, tuple) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            obj = getattr(obj, part)
    return obj

"""Probes: call the student's code on inputs the grader chose and return plain data.

A probe never judges. It runs where the student's code runs (the sandboxed
worker, or in-process for notebooks), takes plain data from the grader and
returns plain data (see ``wire.to_plain``). Every judgement happens in the
grader's own process, on values it computes itself.
"""
import collections.abc
import contextlib
import itertools

import torch
from torch import nn

from . import architectures, train_probe
from .base import ProbeError, backward, get_path, lookup, plain_tensors, seed_all  # noqa: F401 (re-exported)
from .wire import to_plain

NORM_OPS = ("batch_norm", "instance_norm", "layer_norm", "group_norm")
UNOBSERVED = ("unobserved output: a tensor your code returned was computed out of the grader's sight "
              "(PyTorch's dispatch modes switched off, another thread, or memory written directly)")


def _watch_factory():
    """Returns ``new_watch()``. Built once, at import (before any student code runs), so the base class
    and the helpers it uses are the ones PyTorch shipped; each call then builds a NEW watch class in a
    closure, so no class, method or record of it sits in a module global that code could patch."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    tensor_type, storage_of, norm_ops = torch.Tensor, torch.Tensor.untyped_storage, NORM_OPS
    keep_limit = 1 << 24         # elements of op outputs kept alive during one call (no address reuse)

    def storages(value):
        found = set()
        for leaf in tree_flatten(value)[0]:
            if isinstance(leaf, tensor_type) and leaf.numel() > 0 and leaf.device.type != "meta":
                try:
                    found.add(storage_of(leaf).data_ptr())
                except (RuntimeError, NotImplementedError):
                    pass
        return found

    def new_watch():
        """(context manager, report). Inside the context the watch records the normalisation kernels
        PyTorch runs (e.g. ``aten::native_batch_norm``) and the storage of every op's output;
        ``report(outputs, inputs)`` lists those kernels, plus ``UNOBSERVED`` when a returned tensor was
        neither produced under the watch nor one of the inputs (the watch was switched off)."""
        seen, produced, kept = set(), set(), []
        size = [0]

        class Watch(TorchDispatchMode):
            @classmethod
            def _should_skip_dynamo(cls):
                # Else TorchDispatchMode wraps __torch_dispatch__ in torch._disable_dynamo, whose first
                # call imports TorchDynamo: 2.4 s of a worker's time on a 2-core CPU (torch 2.14).
                return False

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func._schema.name
                if any(op in name for op in norm_ops):
                    seen.add(name)
                out = func(*args, **(kwargs or {}))
                produced.update(storages(out))
                for leaf in tree_flatten(out)[0]:
                    if isinstance(leaf, tensor_type) and size[0] < keep_limit:
                        kept.append(leaf)
                        size[0] += leaf.numel()
                return out

        def report(outputs, inputs):
            found = sorted(seen)
            if storages(outputs) - produced - storages(inputs):
                found.append(UNOBSERVED)
            kept.clear()
            return found

        return Watch(), report

    return new_watch


_new_watch = _watch_factory()
del _watch_factory


def watching(enabled):
    """(context manager, report(outputs, inputs) -> list of kernel names) for one probed call."""
    if enabled:
        return _new_watch()
    return contextlib.nullcontext(), lambda outputs, inputs: []


def inventory(names, errors, expected=()):
    """Which of the ``expected`` names (the grader sends them) the submission defines, and its load errors."""
    return {"defined": [n for n in expected if n in names], "load_errors": list(errors)}


def call(names, name, args=(), kwargs=None, grad_args=(), grad_output=None, out_index=None, watch_norm_ops=False):
    """Call a student function. With grad_args, mark those positional args as
    requiring grad, backpropagate grad_output from the output (or
    output[out_index]) and return the gradients as well. With watch_norm_ops,
    also report which of PyTorch's own normalisation kernels ran (``norm_ops``)."""
    fn = lookup(names, name)
    args = list(args)
    for i in grad_args:
        args[i] = args[i].detach().clone().requires_grad_(True)
    watch, report = watching(watch_norm_ops)
    with watch:
        out = fn(*args, **(kwargs or {}))
    if isinstance(out, tuple) and type(out) is not tuple:   # a namedtuple is a tuple
        out = tuple(out)
    result = {"out": to_plain(out), "grads": None, "norm_ops": report(out, [args, kwargs])}
    if grad_args:
        target = out if out_index is None else out[out_index]
        if not isinstance(target, torch.Tensor) or not target.requires_grad:
            result["grads"] = "no-graph"
        else:
            backward(target, grad_output)
            result["grads"] = [to_plain(args[i].grad) for i in grad_args]
    return result


def quiz(names):
    """QUIZ_ANSWERS as plain data; a mapping of another type (OrderedDict, defaultdict) is read as the dict
    of its items (at most 100: the judge says what is missing or extra)."""
    answers = lookup(names, "QUIZ_ANSWERS")
    if type(answers) is not dict and isinstance(answers, collections.abc.Mapping):
        answers = {k: answers[k] for k in itertools.islice(iter(answers), 100)}
    return to_plain(answers)


# ---- modules -------------------------------------------------------------

def build(names, name, ctor_args, seed):
    factory = lookup(names, name)
    seed_all(seed)
    obj = factory(*ctor_args)
    if not isinstance(obj, nn.Module):
        raise ProbeError(f"`{name}{tuple(ctor_args)}` gave a {type(obj).__name__}, expected an nn.Module")
    return obj


def tensor_attributes(module):
    """Tensors stored as plain attributes (d2l keeps moving statistics this way)."""
    found = {}
    for prefix, sub in module.named_modules():
        for key, value in plain_tensors(sub):
            found[f"{prefix}.{key}" if prefix else key] = to_plain(value)
    return found


def state(module):
    return {
        "class": type(module).__name__,
        "training": bool(module.training),
        "params": {n: to_plain(p) for n, p in module.named_parameters()},
        "buffers": {n: to_plain(b) for n, b in module.named_buffers() if b is not None},
        "tensor_attrs": tensor_attributes(module),
        "num_modules": sum(1 for _ in module.modules()),
        "torch_norm_layers": [n for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._NormBase)],
    }


def plain_output(y):
    """The output as plain data; a tensor on the ``meta`` device has no values, so only its shape and device."""
    if isinstance(y, torch.Tensor) and y.device.type == "meta":
        return {"shape": [int(s) for s in y.shape], "device": "meta"}
    return to_plain(y)


def forward(module, op):
    """One forward pass; optionally backward, optionally an operation-level trace (``op_trace``).

    op keys: ``x``; ``trace`` (record the operations; ``trace_values=False`` leaves the weights' values
    out); ``grad_output`` (backpropagate it; with ``grad_shape_guard``, an output of another shape gives
    ``x_grad = "shape-mismatch"`` instead of an error); ``no_grad``; ``watch_norm_ops``; ``device`` (move ``x``
    there first, e.g. "meta": the output then comes back as {"shape", "device"})."""
    from .op_trace import recording
    x = op["x"]
    if op.get("device"):
        x = x.to(op["device"])
    if op.get("grad_output") is not None:
        x = x.detach().clone().requires_grad_(True)
    watch, report = watching(op.get("watch_norm_ops"))
    tracer = recording(module, x, op.get("trace_values", True)) if op.get("trace") else contextlib.nullcontext([])
    with tracer as trace, watch, (torch.no_grad() if op.get("no_grad") else contextlib.nullcontext()):
        y = module(x)
    result = {"y": plain_output(y), "trace": trace,
              "norm_ops": report(y, [x, [vars(m) for m in module.modules()], list(module.buffers())])}
    if op.get("grad_output") is not None:
        module.zero_grad(set_to_none=True)
        if not isinstance(y, torch.Tensor) or not y.requires_grad:
            result["x_grad"] = "no-graph"
        elif op.get("grad_shape_guard") and tuple(y.shape) != tuple(op["grad_output"].shape):
            result["x_grad"] = "shape-mismatch"
        else:
            backward(y, op["grad_output"])
            result["x_grad"] = to_plain(x.grad)
            result["param_grads"] = {n: to_plain(p.grad) for n, p in module.named_parameters()}
    return result


def run_op(module, op):
    kind = op["op"]
    if kind == "train":
        module.train()
        return None
    if kind == "eval":
        module.eval()
        return None
    if kind == "forward":
        return forward(module, op)
    if kind == "state":
        return state(module)
    if kind == "attr":
        return to_plain(get_path(module, op["path"]))
    if kind == "set":
        target = get_path(module, op["path"])
        with torch.no_grad():
            target.copy_(op["value"])
        return None
    if kind == "to":
        module.to(op["device"])
        return None
    if kind == "devices":
        return ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])
    if kind == "forward_on":
        from .device_probe import forward_on
        return forward_on(module, op)
    raise ProbeError(f"unknown module operation {kind!r}")


def module(names, name, ctor_args=(), seed=0, ops=()):
    """Build ``name(*ctor_args)`` under a fixed seed and run ops in order."""
    obj = build(names, name, ctor_args, seed)
    results = []
    for op in ops:
        results.append(run_op(obj, op))
    return results


PROBES = {"inventory": None, "call": call, "quiz": quiz, "module": module,
          "train": train_probe.train,                # LeNet-BN with the student's BatchNorm
          "architecture": architectures.run}         # ResNet-18 / DenseNet from the student's blocks

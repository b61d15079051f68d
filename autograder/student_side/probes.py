"""Probes: call the student's code on inputs the grader chose and return plain data.

A probe never judges. It runs where the student's code runs (the sandboxed
worker, or in-process for notebooks), takes plain data from the grader and
returns plain data (see ``wire.to_plain``). Every judgement happens in the
grader's own process, on values it computes itself.
"""
import contextlib

import torch
from torch import nn

from .loader import EXPECTED_NAMES
from .wire import to_plain


class ProbeError(Exception):
    """The student's code could not be probed; the message is for the student."""


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


def seed_all(seed):
    """Like torch.manual_seed, without queueing a lazy CUDA seeding call on CPU-only runs
    (torch.manual_seed appends one, with a stack trace, every time it is called)."""
    torch.random.default_generator.manual_seed(seed)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)


def lookup(names, name):
    if name not in names:
        raise ProbeError(f"`{name}` is not defined in your submission")
    return names[name]


def inventory(names, errors):
    return {"defined": [n for n in EXPECTED_NAMES if n in names], "load_errors": list(errors)}


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
    result = {"out": to_plain(out), "grads": None, "norm_ops": report(out, [args, kwargs])}
    if grad_args:
        target = out if out_index is None else out[out_index]
        if not isinstance(target, torch.Tensor) or not target.requires_grad:
            result["grads"] = "no-graph"
        else:
            target.backward(grad_output)
            result["grads"] = [to_plain(args[i].grad) for i in grad_args]
    return result


def quiz(names):
    return to_plain(lookup(names, "QUIZ_ANSWERS"))


# ---- modules -------------------------------------------------------------

def build(names, name, ctor_args, seed):
    factory = lookup(names, name)
    seed_all(seed)
    obj = factory(*ctor_args)
    if not isinstance(obj, nn.Module):
        raise ProbeError(f"`{name}{tuple(ctor_args)}` gave a {type(obj).__name__}, expected an nn.Module")
    return obj


def get_path(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def tensor_attributes(module):
    """Tensors stored as plain attributes (d2l keeps moving statistics this way)."""
    found = {}
    for prefix, sub in module.named_modules():
        for key, value in vars(sub).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter) and not key.startswith("_"):
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
    }


# torch_class in a trace record: which of PyTorch's layers a leaf module is, and its settings
LEAF_CONFIG = {
    "Conv2d": (nn.Conv2d, ("kernel_size", "stride", "padding", "dilation", "groups")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding")),
    "TorchBatchNorm": (nn.modules.batchnorm._BatchNorm, ("eps", "momentum", "affine", "track_running_stats")),
    "Linear": (nn.Linear, ("in_features", "out_features")),
}


def leaf_record(module, ident, inputs, output):
    record = {"id": ident, "class": type(module).__name__, "torch_class": None, "config": {},
              "params": {n: to_plain(p) for n, p in module.named_parameters(recurse=False)},
              "in_shape": [list(x.shape) for x in inputs if isinstance(x, torch.Tensor)],
              "out_shape": list(output.shape) if isinstance(output, torch.Tensor) else None}
    for label, (cls, fields) in LEAF_CONFIG.items():
        if isinstance(module, cls):
            record["torch_class"] = label
            record["config"] = {f: to_plain(getattr(module, f)) for f in fields}
    if isinstance(module, nn.ReLU):
        record["torch_class"] = "ReLU"
    return record


def forward(module, op):
    """One forward pass; optionally backward, optionally a trace of leaf modules."""
    trace, hooks = [], []
    if op.get("trace"):
        leaves = [m for m in module.modules() if not list(m.children())]
        ids = {id(m): i for i, m in enumerate(leaves)}
        for m in leaves:
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out: trace.append(leaf_record(mod, ids[id(mod)], inp, out))))
    x = op["x"]
    if op.get("grad_output") is not None:
        x = x.detach().clone().requires_grad_(True)
    watch, report = watching(op.get("watch_norm_ops"))
    try:
        with watch, (torch.no_grad() if op.get("no_grad") else contextlib.nullcontext()):
            y = module(x)
    finally:
        for h in hooks:
            h.remove()
    result = {"y": to_plain(y), "trace": trace,
              "norm_ops": report(y, [x, [vars(m) for m in module.modules()], list(module.buffers())])}
    if op.get("grad_output") is not None:
        module.zero_grad(set_to_none=True)
        if not isinstance(y, torch.Tensor) or not y.requires_grad:
            result["x_grad"] = "no-graph"
        else:
            y.backward(op["grad_output"])
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
    raise ProbeError(f"unknown module operation {kind!r}")


def module(names, name, ctor_args=(), seed=0, ops=()):
    """Build ``name(*ctor_args)`` under a fixed seed and run ops in order."""
    obj = build(names, name, ctor_args, seed)
    results = []
    for op in ops:
        results.append(run_op(obj, op))
    return results


def train(names, **kwargs):
    """Training probe (issue 5): lives in its own module so this one stays small."""
    from .train_probe import train as run_training
    return run_training(names, **kwargs)


def architecture(names, **kwargs):
    """Whole networks (ResNet-18, DenseNet) assembled from the student's blocks."""
    from .architectures import run as run_architecture
    return run_architecture(names, **kwargs)


PROBES = {"inventory": None, "call": call, "quiz": quiz, "module": module, "train": train,
          "architecture": architecture}

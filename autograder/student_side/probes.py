"""Probes: call the student's code on inputs the grader chose and return plain data.

A probe never judges. It runs where the student's code runs (the sandboxed
worker, or in-process for notebooks), takes plain data from the grader and
returns plain data (see ``wire.to_plain``). Every judgement happens in the
grader's own process, on values it computes itself.
"""
import torch
from torch import nn

from .loader import EXPECTED_NAMES
from .wire import to_plain


class ProbeError(Exception):
    """The student's code could not be probed; the message is for the student."""


def lookup(names, name):
    if name not in names:
        raise ProbeError(f"`{name}` is not defined in your submission")
    return names[name]


def inventory(names, errors):
    return {"defined": [n for n in EXPECTED_NAMES if n in names], "load_errors": list(errors)}


def call(names, name, args=(), kwargs=None, grad_args=(), grad_output=None, out_index=None):
    """Call a student function. With grad_args, mark those positional args as
    requiring grad, backpropagate grad_output from the output (or
    output[out_index]) and return the gradients as well."""
    fn = lookup(names, name)
    args = list(args)
    for i in grad_args:
        args[i] = args[i].detach().clone().requires_grad_(True)
    out = fn(*args, **(kwargs or {}))
    result = {"out": to_plain(out), "grads": None}
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
    torch.manual_seed(seed)
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


LEAF_CONFIG = {
    nn.Conv2d: ("kernel_size", "stride", "padding", "dilation", "groups"),
    nn.AvgPool2d: ("kernel_size", "stride", "padding"),
    nn.MaxPool2d: ("kernel_size", "stride", "padding"),
    nn.modules.batchnorm._BatchNorm: ("eps", "momentum", "affine", "track_running_stats"),
}


def leaf_record(module, ident, inputs, output):
    record = {"id": ident, "class": type(module).__name__, "torch_class": None, "config": {},
              "params": {n: to_plain(p) for n, p in module.named_parameters(recurse=False)},
              "in_shape": [list(x.shape) for x in inputs if isinstance(x, torch.Tensor)],
              "out_shape": list(output.shape) if isinstance(output, torch.Tensor) else None}
    for cls, fields in LEAF_CONFIG.items():
        if isinstance(module, cls):
            record["torch_class"] = cls.__name__
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
    try:
        if op.get("no_grad"):
            with torch.no_grad():
                y = module(x)
        else:
            y = module(x)
    finally:
        for h in hooks:
            h.remove()
    result = {"y": to_plain(y), "trace": trace}
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


PROBES = {"inventory": None, "call": call, "quiz": quiz, "module": module, "train": train}

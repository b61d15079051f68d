"""Record what a forward pass ran at the OPERATION level (student side).

``recording(module, x, with_values)`` is a context manager; inside it every
call of the operations below is written down, whatever wrote it: an
``nn.Conv2d`` and ``F.conv2d`` on weights in an ``nn.ParameterList`` give the
same record, and so do ``nn.BatchNorm2d``, ``F.batch_norm``, ``torch.batch_norm``
and a lazy layer. A module whose forward ran none of the structural operations
(conv, batch norm, pooling, cat) and owns two per-channel parameters
(named gamma and beta, or its only two trainable ones), with an output of its input's shape, is recorded as ONE batch
norm (``"source": "module"``): that is how a from-scratch BN, or one written as
a custom ``torch.autograd.Function``, is recognised; the arithmetic inside it is
dropped. The recorder lives in a closure built per call: nothing in this module
holds records, and the hooks and the mode are gone when the context exits.

A record (plain data, one per operation, in execution order)::

    {"kind": "conv" | "norm" | "pool" | "act" | "cat" | "add",
     "fn": "conv2d", "batch_norm", "avg_pool2d", "max_pool2d", "adaptive_avg_pool2d", "relu",
           "leaky_relu", ..., "cat", "add", "layer_norm", ... (for a module norm: its class name),
     "source": "function" or "module",
     "module": class name of the innermost module running, or None,
     "in": [tensor ids of the tensor inputs], "out": tensor id of the output,
     "in_shapes": [[n, c, h, w], ...], "out_shape": [...],
     "device": the first input's device, e.g. "cpu", "meta",
     "params": {role: weight}, roles: conv "weight", "bias"; norm "weight" (gamma), "bias" (beta),
               "running_mean", "running_var"; each present only when a tensor was passed,
     "config": conv {"stride", "padding", "dilation", "groups"}; norm {"training", "momentum", "eps"};
               pool {"kernel_size", "stride", "padding"} or {"output_size"}; cat {"dim"}; act {"inplace"}}

    weight = {"id": int (the same tensor object always gets the same id: a layer used twice shows),
              "name": its registered name in the probed module (parameter or buffer), or None,
              "parameter": bool, "shape": [...], "device": str, "requires_grad": bool,
              "leaf": bool (False for a tensor computed from others, e.g. gamma.view(-1)),
              "value": the tensor (only with_values; never for a meta tensor)}

Tensor ids: the probed module's input is 0; every recorded output gets a new
id (an in-place op too); a tensor no recorded op produced gets an id when first
seen (e.g. a slice of the input).
"""
import contextlib

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from .wire import to_plain

CONV = {"conv2d"}
NORM = {"batch_norm", "instance_norm", "layer_norm", "group_norm", "native_batch_norm"}
POOL = {"avg_pool2d", "max_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d", "adaptive_max_pool2d",
        "lp_pool2d"}
ACT = {"relu", "relu_", "leaky_relu", "leaky_relu_", "relu6", "hardtanh", "hardtanh_", "elu", "elu_", "gelu", "silu",
       "sigmoid", "tanh", "softplus", "mish", "selu", "celu", "prelu"}
CAT = {"cat", "concat", "concatenate"}
ADD = {"add", "add_", "__add__", "__iadd__", "__radd__"}
STRUCTURAL = ("conv", "norm", "pool", "cat")

# positional names of the arguments we read, per function name
SIGNATURES = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation"),
    "max_pool2d_with_indices": ("input", "kernel_size", "stride", "padding", "dilation"),
    "lp_pool2d": ("input", "norm_type", "kernel_size", "stride"),
    "adaptive_avg_pool2d": ("input", "output_size"),
    "adaptive_max_pool2d": ("input", "output_size"),
    "cat": ("tensors", "dim"), "concat": ("tensors", "dim"), "concatenate": ("tensors", "dim"),
}
F_BATCH_NORM = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
TORCH_BATCH_NORM = ("input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps")
DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "dim": 0, "training": False, "momentum": 0.1,
            "eps": 1e-5}


def plain_setting(value):
    if isinstance(value, torch.Size):
        return [int(v) for v in value]
    if isinstance(value, (list, tuple)):
        return [plain_setting(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.device.type != "meta":
        return value.item()
    if type(value) in (bool, int, float, str) or value is None:
        return value
    return repr(value)


def bind(fn, func, args, kwargs):
    if fn == "batch_norm":
        names = F_BATCH_NORM if func is F.batch_norm else TORCH_BATCH_NORM
    else:
        names = SIGNATURES.get(fn, ("input",))
    bound = dict(zip(names, args))
    bound.update(kwargs or {})
    return bound


@contextlib.contextmanager
def recording(module, x, with_values=True):
    """Yield the list that receives the records of everything ``module`` runs inside the block."""
    records = []
    keep, kept_weights = [], []   # every tensor given an id, so Python never reuses its id() during the pass
    tensor_ids = {}
    weight_ids = {}
    names = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), name)
    for name, b in module.named_buffers(remove_duplicate=False):
        if b is not None:
            names.setdefault(id(b), name)
    stack = []                 # (module, index of its first record)

    def tensor_id(t, new=False):
        key = id(t)
        if new or key not in tensor_ids:
            tensor_ids[key] = len(keep)
            keep.append(t)
        return tensor_ids[key]

    tensor_id(x)

    def weight(t):
        key = id(t)
        if key not in weight_ids:
            weight_ids[key] = len(weight_ids)
            kept_weights.append(t)
        if not names.get(key):   # lazy layers materialise their parameters during the first call
            for name, p in module.named_parameters(remove_duplicate=False):
                if p is t:
                    names[key] = name
        record = {"id": weight_ids[key], "name": names.get(key), "parameter": isinstance(t, torch.nn.Parameter),
                  "shape": [int(s) for s in t.shape], "device": str(t.device),
                  "requires_grad": bool(t.requires_grad), "leaf": bool(t.is_leaf)}
        if with_values and t.device.type != "meta":
            record["value"] = to_plain(t)
        return record

    def shape(t):
        return [int(s) for s in t.shape] if isinstance(t, torch.Tensor) else None

    def record(kind, fn, inputs, out, params, config, source="function"):
        tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
        entry = {"kind": kind, "fn": fn, "source": source,
                 "module": type(stack[-1][0]).__name__ if stack else None,
                 "in": [tensor_id(t) for t in tensors], "in_shapes": [shape(t) for t in tensors],
                 "out": tensor_id(out, new=True) if isinstance(out, torch.Tensor) else None,
                 "out_shape": shape(out), "device": str(tensors[0].device) if tensors else None,
                 "params": {role: weight(t) for role, t in params.items() if isinstance(t, torch.Tensor)},
                 "config": {k: plain_setting(v) for k, v in config.items()}}
        records.append(entry)

    def observe(func, args, kwargs, out):
        fn = getattr(func, "__name__", "")
        if fn in ADD:
            a, b = (args + (None, None))[:2]
            if (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dim() == 4
                    and a.shape == b.shape and a.shape[0] * a.shape[2] * a.shape[3] > 1):
                record("add", "add", [a, b], out, {}, {})
            return
        if fn in CONV:
            a = bind(fn, func, args, kwargs)
            record("conv", fn, [a.get("input")], out, {"weight": a.get("weight"), "bias": a.get("bias")},
                   {k: a.get(k, DEFAULTS[k]) for k in ("stride", "padding", "dilation", "groups")})
        elif fn in NORM:
            if fn in ("batch_norm", "native_batch_norm"):
                a = bind("batch_norm", func, args, kwargs)
                params = {k: a.get(k) for k in ("weight", "bias", "running_mean", "running_var")}
                config = {k: a.get(k, DEFAULTS[k]) for k in ("training", "momentum", "eps")}
            else:
                a, params, config = {"input": args[0] if args else None}, {}, {}
            record("norm", "batch_norm" if fn == "native_batch_norm" else fn, [a.get("input")],
                   out[0] if isinstance(out, tuple) else out, params, config)
        elif fn in POOL:
            a = bind(fn, func, args, kwargs)
            keys = ("output_size",) if fn.startswith("adaptive") else ("kernel_size", "stride", "padding")
            config = {k: a.get(k, 0 if k == "padding" else None) for k in keys}
            if config.get("stride") in (None, []) and "kernel_size" in config:
                config["stride"] = config["kernel_size"]
            record("pool", fn.replace("_with_indices", ""), [a.get("input")],
                   out[0] if isinstance(out, tuple) else out, {}, config)
        elif fn in ACT:
            record("act", fn.rstrip("_"), [args[0] if args else kwargs.get("input")], out, {},
                   {"inplace": fn.endswith("_") or bool((kwargs or {}).get("inplace", False))})
        elif fn in CAT:
            a = bind(fn, func, args, kwargs)
            record("cat", "cat", list(a.get("tensors") or ()), out, {}, {"dim": a.get("dim", 0)})

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            try:
                observe(func, tuple(args), kwargs or {}, out)
            except Exception:       # never let the recorder break the student's forward pass
                pass
            return out

    def pre_hook(mod, inputs):
        stack.append((mod, len(records)))

    def post_hook(mod, inputs, out):
        try:
            module_norm(mod, inputs, out)
        except Exception:           # never let the recorder break the student's forward pass
            pass

    def module_norm(mod, inputs, out):
        """Replace what a from-scratch BN module ran by one norm record (see the module docstring)."""
        if not stack or stack[-1][0] is not mod:
            return
        _, start = stack.pop()
        if mod is module or any(r["kind"] in STRUCTURAL for r in records[start:]):
            return
        x_in = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if x_in is None or not isinstance(out, torch.Tensor) or out.shape != x_in.shape or x_in.dim() < 2:
            return
        named = {n.rsplit(".", 1)[-1]: p for n, p in mod.named_parameters()}
        # moving statistics kept as frozen Parameters (requires_grad=False) are not gamma and beta
        trainable = [p for p in mod.parameters() if p.requires_grad]
        if {"gamma", "beta"} <= set(named):
            gamma, beta = named["gamma"], named["beta"]
        elif len(trainable) == 2:
            gamma, beta = trainable
        else:
            return
        channels = x_in.shape[1]
        if not all(t.numel() == channels for t in (gamma, beta)):
            return
        del records[start:]
        stack.append((mod, start))
        config = {"training": bool(mod.training)}
        if type(getattr(mod, "eps", None)) is float:
            config["eps"] = mod.eps
        record("norm", type(mod).__name__, [x_in], out, {"weight": gamma, "bias": beta}, config, source="module")
        stack.pop()

    handles = [torch.nn.modules.module.register_module_forward_pre_hook(pre_hook),
               torch.nn.modules.module.register_module_forward_hook(post_hook)]
    try:
        with Recorder():
            yield records
    finally:
        for h in handles:
            h.remove()

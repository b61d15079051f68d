"""Reading the layers the specification names off an operation trace of the student's block.

``run_block`` asks the ``module`` probe for a traced training-mode forward pass
(``train_forward``); ``parse`` turns the trace into ``Op`` records;
``residual_layers``, ``dense_layers`` and ``transition_layers`` pick out the
convolutions and batch norms the specification names, in execution order, or
fail with a message about the block's structure stated in operations (see the
rules in ``blocks.py``, which recomputes the block from what is picked here).
"""
import dataclasses

import torch

from ..core.check import Fail
from ..core.student import Returned, StudentError

SEED = 2                  # the seed the student's blocks are built under

REGISTER_HINT = ("Layers must be registered submodules: attributes, nn.Sequential or nn.ModuleList, and weights "
                 "used with torch.nn.functional must be nn.Parameter attributes or in an nn.ParameterList "
                 "(a plain Python list, or a layer created inside forward(), is invisible to PyTorch: "
                 "its weights are neither trained nor saved).")


# ---- asking the student's block for a traced forward pass -----------------

def call_text(name, args):
    return f"{name}({', '.join(repr(a) for a in args)})"


ERROR_HINTS = {
    "Residual": "the main path and the shortcut must have the same shape to be added: padding=1 on both 3x3 convs, "
                "the stride on the first 3x3 conv and on the 1x1 conv (not on the second 3x3 conv).",
    "DenseBlock": "conv block i gets in_channels + i·out_channels input channels (everything concatenated so far) "
                  "and adds out_channels; concatenate on dim=1.",
    "transition_block": "BN(in_channels) → ReLU → Conv2d(in_channels, out_channels, kernel_size=1) → "
                        "AvgPool2d(kernel_size=2, stride=2).",
}


def run_block(student, name, args, ops, what):
    """``module`` probe for ``name(*args)`` built under SEED; errors name the call, and when the
    student's code raised (e.g. tensors whose sizes do not match) they end with a hint on the structure."""
    try:
        return student.probe("module", name=name, ctor_args=list(args), seed=SEED, ops=ops)
    except StudentError as exc:
        text, hint = str(exc), ERROR_HINTS.get(name, "")
        if hint and "not implemented yet" not in text and "is not defined" not in text:
            text += f". Hint: {hint}"
        raise StudentError(f"{what}: {text}") from None


def train_forward(x, **extra):
    """ops: training mode, then one forward pass of ``x`` (trace, grad_output... as extra)."""
    return [{"op": "train"}, dict({"op": "forward", "x": x}, **extra)]


# ---- reading layers off a trace -------------------------------------------

@dataclasses.dataclass
class Op:
    """One record of the operation trace (``autograder/student_side/op_trace.py`` documents the fields)."""
    kind: str
    fn: str
    source: str
    ins: list
    out: object
    in_shapes: list
    out_shape: object
    device: object
    params: dict
    config: dict


def parse(trace):
    ops = []
    for r in trace or []:
        if not isinstance(r, dict) or not isinstance(r.get("params", {}), dict):
            continue
        ops.append(Op(str(r.get("kind")), str(r.get("fn")), str(r.get("source")), list(r.get("in") or []),
                      r.get("out"), list(r.get("in_shapes") or []), r.get("out_shape"), r.get("device"),
                      r.get("params") or {}, r.get("config") or {}))
    return ops


@dataclasses.dataclass
class Conv:
    ident: int                    # the weight tensor's id in the trace: the same layer used twice has one id
    weight: torch.Tensor          # float64, (out, in, kh, kw)
    bias: object                  # float64 (out,) or None
    config: dict                  # stride, padding, dilation, groups as the student's code passed them
    raw: dict                     # the op's weight records (registered names, for gradients)
    op: Op = None

    @property
    def kernel(self):
        return tuple(self.weight.shape[2:])


@dataclasses.dataclass
class Norm:
    ident: int
    gamma: torch.Tensor           # float64, (C,)
    beta: torch.Tensor
    own: bool                     # the student's own BN module rather than PyTorch's batch_norm
    raw: dict
    op: Op = None

    @property
    def channels(self):
        return self.gamma.numel()


def as64(value):
    if isinstance(value, dict):
        value = value.get("value")
    return value.value.detach().double() if isinstance(value, Returned) else None


def as_conv(op):
    weight = as64(op.params.get("weight"))
    if op.kind != "conv" or weight is None or weight.dim() != 4:
        return None
    bias = op.params.get("bias")
    return Conv(op.params["weight"].get("id"), weight, as64(bias) if bias is not None else None, op.config,
                op.params, op)


def as_norm(op):
    if op.kind != "norm" or op.fn in ("layer_norm", "group_norm", "instance_norm"):
        return None
    channels = op.in_shapes[0][1] if op.in_shapes and len(op.in_shapes[0]) > 1 else 0
    gamma, beta = as64(op.params.get("weight")), as64(op.params.get("bias"))
    gamma = torch.ones(channels, dtype=torch.float64) if gamma is None else gamma.flatten()
    beta = torch.zeros(channels, dtype=torch.float64) if beta is None else beta.flatten()
    ident = (op.params.get("weight") or op.params.get("bias") or op.params.get("running_mean") or {}).get("id")
    return Norm(ident if ident is not None else -1 - len(op.ins), gamma, beta, op.source == "module", op.params, op)


def scan(trace):
    """(convs, norms) in execution order, whatever code ran them (modules or torch.nn.functional)."""
    ops = parse(trace)
    convs = [c for c in map(as_conv, ops) if c is not None]
    norms = [n for n in map(as_norm, ops) if n is not None]
    return convs, norms


def kernels(convs):
    return ", ".join("x".join(str(k) for k in c.kernel) for c in convs) or "none"


def distinct(layers, what, kind):
    if len({layer.ident for layer in layers}) != len(layers):
        raise Fail(f"{what}: one {kind} layer runs twice where the specification has separate layers. "
                   f"Each {kind} needs its own module (its own weights): create one per use in __init__.")


def expect_weight(conv, shape, what, which, hint=""):
    if tuple(conv.weight.shape) != tuple(shape):
        raise Fail(f"{what}: {which} has a weight of shape {tuple(conv.weight.shape)}, expected {tuple(shape)} "
                   f"(out_channels, in_channels, kernel_h, kernel_w). {hint}".strip())


def expect_norm(norm, channels, what, which, hint=""):
    if norm.channels != channels:
        raise Fail(f"{what}: {which} normalises {norm.channels} channels, expected {channels}. {hint}".strip())


def common_structure(ops, what):
    """What no block may do, in operation terms: normalise with something other than batch norm, run a batch
    norm in evaluation mode during a training-mode pass, or compute with weights that are not registered."""
    for op in ops:
        if op.kind == "norm" and op.fn in ("layer_norm", "group_norm", "instance_norm"):
            raise Fail(f"{what}: your block normalises with {op.fn}; the specification uses batch normalisation "
                       f"(statistics per channel over the batch, height and width).")
        if op.kind == "norm" and op.config.get("training") is False:
            raise Fail(f"{what}: a batch norm ran with training=False while the block is in training mode, so it "
                       f"normalised with its moving statistics instead of the batch's. Hint: pass self.training "
                       f"(F.batch_norm(..., training=self.training)).")
    for op in ops:
        if op.kind == "act" and op.fn != "relu":
            raise Fail(f"{what}: your block applies {op.fn}; the specification's activation is ReLU "
                       f"(F.relu or nn.ReLU).")
    for op in ops:
        for role in ("weight", "bias"):
            w = op.params.get(role)
            if (op.kind in ("conv", "norm") and isinstance(w, dict) and w.get("requires_grad") and w.get("leaf", True)
                    and not w.get("name")):
                layer = "convolution" if op.kind == "conv" else "batch norm"
                raise Fail(f"{what}: a {layer} ran with a {role} that is not a registered parameter of your block. "
                           f"{REGISTER_HINT}")


def produced_by(ops):
    return {op.out: op for op in ops if op.out is not None}


def residual_layers(trace, args, what):
    """conv1, conv2, shortcut (or None), bn1, bn2 of ``Residual(*args)``, or Fail on the structure.

    In operation terms: two 3x3 convolutions and two batch norms on the main path; on the shortcut one 1x1
    convolution when use_1x1conv, else nothing; no normalisation of the block's own input (tensor 0)."""
    in_c, out_c, use_1x1, _ = residual_args(args)
    ops = parse(trace)
    convs, norms = scan(trace)
    if not convs:
        raise Fail(f"{what}: no convolution ran in your block (neither an nn.Conv2d nor F.conv2d). {REGISTER_HINT}")
    common_structure(ops, what)
    if any(0 in n.op.ins for n in norms):
        raise Fail(f"{what}: a batch norm runs on the block's input before any convolution: that is a "
                   f"pre-activation block (BN → ReLU → conv, ResNet v2). The lesson's Residual is post-activation: "
                   f"conv3x3 → BN → ReLU → conv3x3 → BN, add the shortcut, then ReLU.")
    c3 = [c for c in convs if c.kernel == (3, 3)]
    c1 = [c for c in convs if c.kernel == (1, 1)]
    if use_1x1 and len(convs) == 3 and not c1 and len(c3) >= 2:
        raise Fail(f"{what}: with use_1x1conv=True the shortcut is one 1x1 convolution (kernel_size=1, with the "
                   f"block's stride, no padding); your block ran three convolutions with kernels {kernels(convs)} "
                   f"and none is 1x1: the shortcut's conv has the wrong kernel size.")
    if len(c3) != 2 or len(c3) + len(c1) != len(convs):
        bottleneck = len(c3) == 1 and len(c1) >= 2
        raise Fail(f"{what}: expected two 3x3 convolutions on the main path (kernel_size=3, padding=1), "
                   f"your block ran convolutions with kernels {kernels(convs)}."
                   + (" That is a bottleneck block (1x1 → 3x3 → 1x1, as in ResNet-50); the lesson's Residual is "
                      "the basic block: two 3x3 convs." if bottleneck else ""))
    call = call_text("Residual", args)
    if use_1x1 and len(c1) != 1:
        raise Fail(f"{what}: with use_1x1conv=True the shortcut is one 1x1 convolution (with the block's stride); "
                   f"your block ran {len(c1)}." + (
                       f" {call} must put conv1x1(X) on the shortcut even when the shapes already match: "
                       f"use_1x1conv alone decides (choosing it from in_channels != out_channels or stride != 1 "
                       f"ignores the flag)." if not c1 else ""))
    if not use_1x1 and c1:
        raise Fail(f"{what}: with use_1x1conv=False the shortcut is the input itself, "
                   f"but your block ran a 1x1 convolution: use_1x1conv alone decides the shortcut.")
    shortcut = c1[0] if c1 else None
    if shortcut is not None:
        on_shortcut = [n for n in norms if shortcut.op.out in n.op.ins]
        if on_shortcut:
            raise Fail(f"{what}: your shortcut runs a batch norm after its 1x1 conv, as torchvision's BasicBlock "
                       f"does (downsample = nn.Sequential(conv1x1, nn.BatchNorm2d)). The lesson's Residual (d2l) "
                       f"has no BN on the shortcut: it adds conv1x1(X) itself. Remove the BN from the shortcut.")
    if len(norms) != 2:
        raise Fail(f"{what}: expected two batch-norm layers (one after each 3x3 conv), your block ran {len(norms)}. "
                   + (REGISTER_HINT if not norms else ""))
    distinct(c3, what, "3x3 conv")
    distinct(norms, what, "batch-norm")
    expect_weight(c3[0], (out_c, in_c, 3, 3), what, "the first 3x3 conv")
    expect_weight(c3[1], (out_c, out_c, 3, 3), what, "the second 3x3 conv")
    if c1:
        expect_weight(c1[0], (out_c, in_c, 1, 1), what, "the 1x1 shortcut conv")
    for which, norm in (("the first batch norm", norms[0]), ("the second batch norm", norms[1])):
        expect_norm(norm, out_c, what, which, "Each BN follows a 3x3 conv, so it sees out_channels channels.")
    return {"conv1": c3[0], "conv2": c3[1], "shortcut": shortcut, "bn1": norms[0], "bn2": norms[1]}


def dense_layers(trace, args, what):
    """[(bn_i, conv_i)] of ``DenseBlock(*args)``, or Fail on the structure.

    In operation terms: num_convs times batch norm → 3x3 convolution, each conv's output concatenated to the
    features along channels (torch.cat on dim 1)."""
    num_convs, in_c, growth = args
    ops = parse(trace)
    convs, norms = scan(trace)
    if not convs:
        raise Fail(f"{what}: no convolution ran in your block (neither an nn.Conv2d nor F.conv2d). {REGISTER_HINT}")
    common_structure(ops, what)
    for op in ops:
        if op.kind == "cat" and op.config.get("dim") not in (1, -3):
            raise Fail(f"{what}: torch.cat ran on dim={op.config.get('dim')}; the features are concatenated along "
                       f"the channels: torch.cat((X, Y), dim=1).")
    if any(c.kernel == (1, 1) for c in convs) and len(norms) == 2 * num_convs:
        raise Fail(f"{what}: each conv block is a bottleneck layer (BN → ReLU → conv1x1 → BN → ReLU → conv3x3, as "
                   f"in DenseNet-BC); the lesson's conv block is BN → ReLU → conv3x3 alone.")
    producers = produced_by(ops)
    after_conv = [i for i, n in enumerate(norms) if any(getattr(producers.get(t), "kind", None) == "conv"
                                                        for t in n.op.ins)]
    if after_conv and 0 in convs[0].op.ins:
        raise Fail(f"{what}: a batch norm runs after its convolution (conv → BN → ReLU); each conv block is "
                   f"BN → ReLU → conv3x3: it normalises everything concatenated so far, then convolves.")
    if after_conv:
        i = after_conv[0]
        raise Fail(f"{what}: conv block {i + 1} gets only the previous conv block's output. Conv block i sees ALL "
                   f"channels so far: the block's input and every earlier block's output concatenated "
                   f"(in_channels + i·growth channels), X = torch.cat((X, Y), dim=1) before the next block.")
    if len(convs) != num_convs or any(c.kernel != (3, 3) for c in convs):
        raise Fail(f"{what}: expected {num_convs} 3x3 convolutions (one per conv block), "
                   f"your block ran convolutions with kernels {kernels(convs)}.")
    if len(norms) != num_convs:
        raise Fail(f"{what}: expected {num_convs} batch-norm layers (one per conv block: BN → ReLU → conv), "
                   f"your block ran {len(norms)}.")
    distinct(convs, what, "conv")
    distinct(norms, what, "batch-norm")
    hint = ("Conv block i sees ALL channels so far: the block's input and every earlier block's output, "
            "in_channels + i·growth of them, and runs BN → ReLU → conv3x3 on them.")
    for i, (norm, conv) in enumerate(zip(norms, convs)):
        seen = in_c + i * growth
        expect_norm(norm, seen, what, f"the batch norm of conv block {i + 1}", hint)
        expect_weight(conv, (growth, seen, 3, 3), what, f"the conv of conv block {i + 1}", hint)
    return list(zip(norms, convs))


def transition_layers(trace, args, what):
    """(bn, conv) of ``transition_block(*args)``, or Fail on the structure.

    In operation terms: a batch norm, a 1x1 convolution and 2x2 average pooling with stride 2."""
    in_c, out_c = args
    ops = parse(trace)
    convs, norms = scan(trace)
    if not convs:
        raise Fail(f"{what}: no convolution ran in your block (neither an nn.Conv2d nor F.conv2d). {REGISTER_HINT}")
    common_structure(ops, what)
    pools = [op for op in ops if op.kind == "pool"]
    if any("max" in op.fn for op in pools):
        raise Fail(f"{what}: your block uses max pooling ({pools[0].fn}); a transition block averages: "
                   f"nn.AvgPool2d(kernel_size=2, stride=2) (or F.avg_pool2d(X, 2)).")
    producers = produced_by(ops)
    if any(getattr(producers.get(t), "kind", None) == "conv" for n in norms for t in n.op.ins):
        raise Fail(f"{what}: the batch norm runs after the conv; the transition block is BN → ReLU → conv1x1 → "
                   f"AvgPool2d(2, stride 2): it normalises the block's input first.")
    for op in pools:
        if op.fn == "avg_pool2d" and (pair(op.config.get("kernel_size")) != (2, 2) or pair(op.config.get("stride"))
                                      != (2, 2) or pair(op.config.get("padding") or 0) != (0, 0)):
            raise Fail(f"{what}: your average pooling has kernel_size {op.config.get('kernel_size')}, stride "
                       f"{op.config.get('stride')}, padding {op.config.get('padding')}; the transition block pools "
                       f"2x2 windows side by side: AvgPool2d(kernel_size=2, stride=2), no padding.")
    if len(convs) != 1 or convs[0].kernel != (1, 1):
        raise Fail(f"{what}: expected one 1x1 convolution (it changes the number of channels; the pooling "
                   f"halves height and width), your block ran convolutions with kernels {kernels(convs)}.")
    if len(norms) != 1:
        raise Fail(f"{what}: expected one batch-norm layer (BN → ReLU → conv1x1 → AvgPool), your block ran {len(norms)}.")
    expect_norm(norms[0], in_c, what, "the batch norm", "It comes first and normalises the block's input.")
    expect_weight(convs[0], (out_c, in_c, 1, 1), what, "the 1x1 conv")
    return norms[0], convs[0]


def pair(value):
    """A setting such as stride as a pair: 2 -> (2, 2), (3,) -> (3, 3)."""
    if isinstance(value, (tuple, list)):
        return tuple(value) * 2 if len(value) == 1 else tuple(value)
    return (value, value) if isinstance(value, int) else value


def residual_args(args):
    """(in_channels, out_channels, use_1x1conv, stride) with the defaults filled in."""
    args = list(args) + [False, 1][len(args) - 2:]
    return args[0], args[1], bool(args[2]), args[3]

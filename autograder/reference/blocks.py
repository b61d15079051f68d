"""The grader's own recomputation of Residual, DenseBlock and transition_block, in float64.

How a block is judged on values, not only on shapes: the ``module`` probe runs
one training-mode forward pass of the student's block with ``trace=True``, which
records every OPERATION it runs (``autograder/student_side/op_trace.py``: conv2d,
batch_norm, pooling, activations, cat, same-shape add), whatever code ran it:
modules, ``torch.nn.functional`` on weights in ``nn.ParameterList``s, lazy
layers, ``nn.Sequential`` / ``nn.ModuleDict`` subclasses, custom modules, a BN
of the student's own (module with gamma and beta) or a custom autograd Function.
Each record names the weights it used (a stable id per tensor, and its
registered name) and the tensors it consumed and produced. ``residual_layers``,
``dense_layers`` and ``transition_layers`` pick out of that trace the operations
the specification names (or fail with a message about the block's structure,
stated in operations); ``residual``, ``dense_block`` and ``transition`` recompute
the block from those weights with ``torch.nn.functional`` in float64; ``compare``
says where the student's output differs and which known mistake it matches.

Batch normalisation in training mode, per channel ``c`` (the only mode
recomputed here; a fresh block is in training mode)::

    mean[c] = 1/(N*H*W) * sum_{n,h,w} x[n,c,h,w]
    var[c]  = 1/(N*H*W) * sum_{n,h,w} (x[n,c,h,w] - mean[c])**2          (biased)
    BN(x)[n,c,h,w] = gamma[c] * (x[n,c,h,w] - mean[c]) / sqrt(var[c] + eps) + beta[c]
    eps = 1e-5

The blocks (``conv3x3``: 3x3 convolution, padding 1; ``conv1x1``: no padding;
``_s``: stride s)::

    Residual(x) = ReLU( BN2(conv3x3(ReLU(BN1(conv3x3_s(x))))) + shortcut(x) )
        shortcut(x) = x, or conv1x1_s(x) when use_1x1conv
    DenseBlock(x): X_0 = x;  X_{i+1} = cat((X_i, conv3x3_i(ReLU(BN_i(X_i)))), dim=1);  output X_n
        conv3x3_i maps in_channels + i*growth channels to growth channels
    transition_block(x) = AvgPool2d(2, stride 2)( conv1x1( ReLU( BN(x) ) ) )

Layers are recognised by what ran, never by attribute or class names:

- a conv is a ``conv2d`` operation; the kernel size tells the 3x3 convs from the
  1x1 shortcut, execution order tells conv1 from conv2, and the tensor ids tell
  what each op consumed (a BN on the 1x1 conv's output is a BN on the shortcut;
  a BN on the block's input, tensor 0, makes a pre-activation block);
- a batch norm is a ``batch_norm`` operation (gamma/beta: its weight and bias,
  ones/zeros when absent), or a module that ran no structural operation, owns
  two per-channel tensors and keeps its input's shape (the student's own BN);
- the same weight id twice means one layer used in two places;
- a weight that requires grad but is no registered parameter of the block (a
  layer in a plain list, or made in forward) is reported as unregistered.

Conv biases are used when present (a bias right before a training-mode BN
cancels anyway). Only the spec's strides and paddings are used, so a conv with
the wrong stride shows up as a difference, with a note naming the setting.
"""
import dataclasses

import torch
from torch.nn import functional as F

from ..core.check import Fail, expect_finite, fmt
from ..core.student import Returned, StudentError

EPS = 1e-5
SEED = 2                  # the seed the student's blocks are built under
RTOL, ATOL = 1e-4, 1e-4   # float32 forward vs float64 recomputation; mistakes differ by ~0.1 or more

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


def residual_args(args):
    """(in_channels, out_channels, use_1x1conv, stride) with the defaults filled in."""
    args = list(args) + [False, 1][len(args) - 2:]
    return args[0], args[1], bool(args[2]), args[3]


# ---- the functional recomputation, float64 --------------------------------

def batch_norm(x, norm, eps=EPS):
    """Training-mode BN: batch mean and biased variance over (N, H, W), per channel."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    return norm.gamma.view(1, -1, 1, 1) * (x - mean) / torch.sqrt(var + eps) + norm.beta.view(1, -1, 1, 1)


def conv(x, layer, stride=1, padding=0):
    return F.conv2d(x, layer.weight, layer.bias, stride=stride, padding=padding)


def residual(x, layers, stride):
    """ReLU(BN2(conv3x3(ReLU(BN1(conv3x3_s(x))))) + shortcut(x))."""
    x = x.double()
    y = F.relu(batch_norm(conv(x, layers["conv1"], stride, 1), layers["bn1"]))
    y = batch_norm(conv(y, layers["conv2"], 1, 1), layers["bn2"])
    shortcut = x if layers["shortcut"] is None else conv(x, layers["shortcut"], stride, 0)
    return F.relu(y + shortcut)


def dense_block(x, layers, input_first=True):
    """X_{i+1} = cat((X_i, conv3x3_i(ReLU(BN_i(X_i)))), dim=1); ``input_first=False`` is the common slip."""
    x = x.double()
    for norm, layer in layers:
        y = conv(F.relu(batch_norm(x, norm)), layer, 1, 1)
        x = torch.cat((x, y) if input_first else (y, x), dim=1)
    return x


def transition(x, layers, pool=F.avg_pool2d):
    """AvgPool2d(2, 2)(conv1x1(ReLU(BN(x))))."""
    norm, layer = layers
    return pool(conv(F.relu(batch_norm(x.double(), norm)), layer), kernel_size=2, stride=2)


# ---- comparing ------------------------------------------------------------

def close(got, expected, rtol=RTOL, atol=ATOL):
    return tuple(got.shape) == tuple(expected.shape) and bool(
        ((got.double() - expected).abs() <= atol + rtol * expected.abs()).all())


def compare(got, expected, what, formula, alternatives=(), hint="", rtol=RTOL, atol=ATOL):
    """Fail unless |got - expected| <= atol + rtol·|expected| everywhere.

    ``alternatives`` are (tensor, hint) pairs: what a known mistake would have
    produced from the same weights; when the student's output matches one, its
    hint replaces the generic one.
    """
    expect_finite(got, what)
    got64 = got.double()
    err = (got64 - expected).abs()
    allowed = atol + rtol * expected.abs()
    if bool((err <= allowed).all()):
        return
    i = int(torch.argmax(err - allowed))
    index = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), tuple(got.shape)))
    matched = False
    for alternative, alt_hint in alternatives:
        if close(got64, alternative, rtol, atol):
            hint, matched = alt_hint, True
            break
    if alternatives and not matched and not hint.startswith("Your layers differ"):
        hint = (f"it matches none of the {len(alternatives)} usual mistakes recomputed from the same weights "
                f"(ReLU, BN, pooling or shortcut misplaced or missing). The formula is {formula}. " + hint)
    raise Fail(f"{what}: output differs from {formula} recomputed from your own weights; "
               f"the largest difference is at index {index}: expected {fmt(expected.flatten()[i])}, "
               f"got {fmt(got64.flatten()[i])} ({int((err > allowed).sum())} of {err.numel()} values differ by more "
               f"than {atol:g} + {rtol:g}·|expected|). Hint: {hint}".strip())


def pair(value):
    if isinstance(value, (tuple, list)):
        return tuple(value) * 2 if len(value) == 1 else tuple(value)
    return (value, value) if isinstance(value, int) else value


def config_notes(specs):
    """'; '-joined notes for convs whose stride/padding differ from the spec: specs = [(label, conv, stride, padding)]."""
    notes = []
    for label, layer, stride, padding in specs:
        if layer is None:
            continue
        got_stride, got_padding = pair(layer.config.get("stride", 1)), pair(layer.config.get("padding", 0))
        if got_padding == "same" and layer.kernel[0] % 2 == 1:
            got_padding = (layer.kernel[0] // 2, layer.kernel[1] // 2)
        if got_stride != pair(stride):
            notes.append(f"{label} has stride {got_stride}, the specification says {stride}")
        if got_padding != pair(padding):
            notes.append(f"{label} has padding {got_padding}, the specification says {padding}")
        if pair(layer.config.get("dilation", 1)) != (1, 1):
            notes.append(f"{label} has dilation {pair(layer.config.get('dilation'))}, the specification says 1")
    return ("Your layers differ from the specification: " + "; ".join(notes) + ". ") if notes else ""


def own_bn_note(norms):
    if any(n.own for n in norms):
        return (" (Your block uses your own BatchNorm: if the BatchNorm / batch_norm checks fail, "
                "fix those first.)")
    return ""


# ---- gradients of the recomputation ---------------------------------------

def requiring_grad(layers, leaves):
    """A copy of ``layers`` (Conv / Norm, in dicts, lists, tuples) whose tensors are fresh float64 leaves that
    require grad; ``leaves`` maps each layer's ident to its copy."""
    if isinstance(layers, dict):
        return {k: requiring_grad(v, leaves) for k, v in layers.items()}
    if isinstance(layers, (list, tuple)):
        return type(layers)(requiring_grad(v, leaves) for v in layers)
    if isinstance(layers, Conv):
        bias = None if layers.bias is None else layers.bias.clone().requires_grad_(True)
        copy = dataclasses.replace(layers, weight=layers.weight.clone().requires_grad_(True), bias=bias)
    elif isinstance(layers, Norm):
        copy = dataclasses.replace(layers, gamma=layers.gamma.clone().requires_grad_(True),
                                   beta=layers.beta.clone().requires_grad_(True))
    else:
        return layers
    leaves[layers.ident] = copy.weight if isinstance(copy, Conv) else copy.gamma
    return copy


def recomputed_gradients(x, grad_output, layers, recompute):
    """({layer ident: float64 leaf with .grad}, d/dx): autograd through ``recompute(x, layers)`` in float64."""
    leaves = {}
    copies = requiring_grad(layers, leaves)
    x64 = x.double().requires_grad_(True)
    recompute(x64, copies).backward(grad_output.double())
    return leaves, x64.grad


def compare_grad(got, expected, what, hint):
    """Gradients agree when |got - expected| <= 1e-3·max|expected| + 1e-3·|expected| everywhere (float32 vs 64)."""
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    atol = 1e-3 * scale + 1e-7
    if close(got, expected, rtol=1e-3, atol=atol):
        return
    err = (got.double() - expected).abs() if tuple(got.shape) == tuple(expected.shape) else None
    where = ""
    if err is not None:
        i = int(torch.argmax(err))
        where = f": expected {fmt(expected.flatten()[i])}, got {fmt(got.double().flatten()[i])} at flat index {i}"
    raise Fail(f"{what} differs from autograd through the recomputation from your own weights{where}. Hint: {hint}")

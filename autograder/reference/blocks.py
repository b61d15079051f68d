"""The grader's own recomputation of Residual, DenseBlock and transition_block, in float64.

How a block is judged on values, not only on shapes: the ``module`` probe runs
one training-mode forward pass of the student's block with ``trace=True``, which
records every leaf module call in execution order (class, settings, parameters,
input and output shapes). ``residual_layers``, ``dense_layers`` and
``transition_layers`` pick out of that trace the layers the specification names
(or fail with a message about the block's structure); ``residual``,
``dense_block`` and ``transition`` recompute the block from those weights with
``torch.nn.functional`` in float64; ``compare`` says where the student's output
differs.

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

Layers are recognised by what they are, never by their attribute names:

- a conv is an ``nn.Conv2d``; the kernel size tells the 3x3 convs from the 1x1
  shortcut, and execution order tells conv1 from conv2 (conv2 consumes conv1's
  output, so it cannot run first);
- a batch norm is PyTorch's (any ``_BatchNorm``), or a leaf whose parameters are
  named ``gamma`` and ``beta``, or any other leaf with exactly two parameters of
  shape (C,) or (1, C, 1, 1) (scale first); BNs are taken in execution order.

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

REGISTER_HINT = ("Layers must be registered submodules: attributes, nn.Sequential or nn.ModuleList "
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
class Conv:
    ident: int
    weight: torch.Tensor          # float64, (out, in, kh, kw)
    bias: object                  # float64 (out,) or None
    config: dict
    raw: dict                     # the record's params, as returned (for matching gradients)

    @property
    def kernel(self):
        return tuple(self.weight.shape[2:])


@dataclasses.dataclass
class Norm:
    ident: int
    gamma: torch.Tensor           # float64, (C,)
    beta: torch.Tensor
    own: bool                     # the student's own class rather than PyTorch's
    raw: dict

    @property
    def channels(self):
        return self.gamma.numel()


def as64(value):
    return value.value.detach().double() if isinstance(value, Returned) else None


def as_conv(record):
    params = record.get("params") or {}
    if record.get("torch_class") != "Conv2d" or as64(params.get("weight")) is None:
        return None
    bias = params.get("bias")
    return Conv(record["id"], as64(params["weight"]), as64(bias) if bias is not None else None,
                record.get("config") or {}, params)


def norm_shaped(t):
    return t is not None and (t.dim() == 1 or (t.dim() == 4 and t.shape[0] == 1 and tuple(t.shape[2:]) == (1, 1)))


def as_norm(record):
    params = record.get("params") or {}
    kind = record.get("torch_class")
    if kind == "TorchBatchNorm":
        channels = record["in_shape"][0][1] if record.get("in_shape") else 0
        gamma = as64(params.get("weight"))
        beta = as64(params.get("bias"))
        gamma = torch.ones(channels, dtype=torch.float64) if gamma is None else gamma
        beta = torch.zeros(channels, dtype=torch.float64) if beta is None else beta
        return Norm(record["id"], gamma.flatten(), beta.flatten(), False, params)
    if kind is not None:
        return None
    if set(params) == {"gamma", "beta"}:
        gamma, beta = as64(params["gamma"]), as64(params["beta"])
    elif len(params) == 2:
        gamma, beta = (as64(v) for v in params.values())
    else:
        return None
    if not (norm_shaped(gamma) and norm_shaped(beta) and gamma.shape == beta.shape):
        return None
    return Norm(record["id"], gamma.flatten(), beta.flatten(), True, params)


def scan(trace):
    """(convs, norms) in execution order."""
    convs, norms = [], []
    for record in trace or []:
        conv = as_conv(record)
        if conv is not None:
            convs.append(conv)
            continue
        norm = as_norm(record)
        if norm is not None:
            norms.append(norm)
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


def residual_layers(trace, args, what):
    """conv1, conv2, shortcut (or None), bn1, bn2 of ``Residual(*args)``, or Fail on the structure."""
    in_c, out_c, use_1x1, _ = residual_args(args)
    convs, norms = scan(trace)
    if not convs:
        raise Fail(f"{what}: no nn.Conv2d ran as a registered layer of your block. {REGISTER_HINT}")
    c3 = [c for c in convs if c.kernel == (3, 3)]
    c1 = [c for c in convs if c.kernel == (1, 1)]
    if len(c3) != 2 or len(c3) + len(c1) != len(convs):
        raise Fail(f"{what}: expected two 3x3 convolutions on the main path (kernel_size=3, padding=1), "
                   f"your block ran convolutions with kernels {kernels(convs)}.")
    if use_1x1 and len(c1) != 1:
        raise Fail(f"{what}: with use_1x1conv=True the shortcut is one 1x1 convolution (with the block's stride); "
                   f"your block ran {len(c1)}.")
    if not use_1x1 and c1:
        raise Fail(f"{what}: with use_1x1conv=False the shortcut is the input itself, "
                   f"but your block ran a 1x1 convolution.")
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
    return {"conv1": c3[0], "conv2": c3[1], "shortcut": c1[0] if c1 else None, "bn1": norms[0], "bn2": norms[1]}


def dense_layers(trace, args, what):
    """[(bn_i, conv_i)] of ``DenseBlock(*args)``, or Fail on the structure."""
    num_convs, in_c, growth = args
    convs, norms = scan(trace)
    if not convs:
        raise Fail(f"{what}: no nn.Conv2d ran as a registered layer of your block. {REGISTER_HINT}")
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
    """(bn, conv) of ``transition_block(*args)``, or Fail on the structure."""
    in_c, out_c = args
    convs, norms = scan(trace)
    if not convs:
        raise Fail(f"{what}: no nn.Conv2d ran as a registered layer of your block. {REGISTER_HINT}")
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
    for alternative, alt_hint in alternatives:
        if close(got64, alternative, rtol, atol):
            hint = alt_hint
            break
    raise Fail(f"{what}: output differs from {formula} recomputed from your own weights; "
               f"the largest difference is at index {index}: expected {fmt(expected.flatten()[i])}, "
               f"got {fmt(got64.flatten()[i])} ({int((err > allowed).sum())} of {err.numel()} values differ by more "
               f"than {atol:g} + {rtol:g}·|expected|). Hint: {hint}".strip())


def pair(value):
    if isinstance(value, (tuple, list)):
        return tuple(value)
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
    return ("Your layers differ from the specification: " + "; ".join(notes) + ". ") if notes else ""


def own_bn_note(norms):
    if any(n.own for n in norms):
        return (" (Your block uses your own BatchNorm: if the BatchNorm / batch_norm checks fail, "
                "fix those first.)")
    return ""

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
from ..student_side.base import backward
from .block_layers import Conv, Norm, pair
from .block_layers import (SEED, call_text, dense_layers, parse, residual_args, residual_layers,  # noqa: F401
                           run_block, train_forward, transition_layers)  # the judges reach them as rc.*

EPS = 1e-5
RTOL, ATOL = 1e-4, 1e-4   # float32 forward vs float64 recomputation; mistakes differ by ~0.1 or more


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
    backward(recompute(x64, copies), grad_output.double())
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

"""Hidden checks for Residual: shape formulas, values recomputed from the student's weights, eval mode, gradients.

Shapes: with stride s, H -> floor((H - 1) / s) + 1 on both paths (3x3 with
padding 1, and the 1x1 shortcut), channels -> out_channels; e.g. 7x7 with
stride 2 -> 4x4.

Values: one training-mode forward pass is traced and recomputed in float64 as

    ReLU( BN2(conv3x3(ReLU(BN1(conv3x3_s(x))))) + shortcut(x) ),   shortcut = x or conv1x1_s(x)

(see ``autograder/recompute.py``). When the output differs, the output of a few
known mistakes is recomputed from the same weights to name the mistake.
"""
import torch
from torch.nn import functional as F

from ..core.check import Fail, check, expect, expect_finite, expect_shape
from ..reference import blocks as rc
from ..checks.residual import shape_diagnosis
from ..core.student import Returned, StudentError

FORMULA = "conv3x3 → BN → ReLU → conv3x3 → BN → (+ shortcut) → ReLU"
GENERIC_HINT = ("Y = ReLU(BN1(conv1(X))); Y = BN2(conv2(Y)); return ReLU(Y + shortcut(X)), where shortcut is X itself "
                "or conv3(X) when use_1x1conv. The stride goes on conv1 and on the 1x1 conv, never on conv2.")


def randn(shape, seed=10):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def out_size(h, stride):
    return (h - 1) // stride + 1


def expected_shape(args, in_shape):
    _, out_c, _, stride = rc.residual_args(args)
    n, _, h, w = in_shape
    return (n, out_c, out_size(h, stride), out_size(w, stride))


def mistakes(x, layers, stride):
    """What common slips produce from the same weights, each with the hint that names it."""
    x = x.double()
    bn, conv = rc.batch_norm, rc.conv
    first = bn(conv(x, layers["conv1"], stride, 1), layers["bn1"])
    main = bn(conv(F.relu(first), layers["conv2"], 1, 1), layers["bn2"])
    shortcut = x if layers["shortcut"] is None else conv(x, layers["shortcut"], stride, 0)
    no_inner = bn(conv(first, layers["conv2"], 1, 1), layers["bn2"])
    after_add = bn(conv(F.relu(first), layers["conv2"], 1, 1) + shortcut, layers["bn2"])
    return [
        (main + shortcut, "your block is missing the final ReLU: it comes after the addition, ReLU(Y + X)."),
        (F.relu(main) + shortcut, "the ReLU runs before the addition; it belongs after it: ReLU(Y + X)."),
        (F.relu(F.relu(main) + shortcut), "there is an extra ReLU before the addition; only ReLU(Y + X) after it."),
        (F.relu(after_add), "the second BN runs after the addition; it belongs to the main path: "
                            "ReLU(BN2(conv2(Y)) + X)."),
        (F.relu(no_inner + shortcut), "the ReLU between the first BN and the second conv is missing."),
        (F.relu(main), "the shortcut is missing: add X (or its 1x1 conv) before the final ReLU."),
    ]


def residual_values(student, args, in_shape):
    x = randn(in_shape)
    what = f"{rc.call_text('Residual', args)} on a {in_shape} input"
    answer = rc.run_block(student, "Residual", args, rc.train_forward(x, trace=True), what)[1]
    want = expected_shape(args, in_shape)
    got = expect_shape(answer["y"], want, what, shape_diagnosis(answer["y"], want, GENERIC_HINT))
    layers = rc.residual_layers(answer["trace"], args, what)
    stride = rc.residual_args(args)[3]
    notes = rc.config_notes([("the first 3x3 conv", layers["conv1"], stride, 1),
                             ("the second 3x3 conv", layers["conv2"], 1, 1),
                             ("the 1x1 shortcut conv", layers["shortcut"], stride, 0)])
    rc.compare(got, rc.residual(x, layers, stride), what, FORMULA, mistakes(x, layers, stride),
               notes + GENERIC_HINT + rc.own_bn_note([layers["bn1"], layers["bn2"]]))


@check("Residual.shapes", "Residual", 2, "Residual output shapes: channels, stride 1/2/3, 1x1 conv, odd sizes", hidden=True)
def shapes(student):
    for args, in_shape in [((4, 8, True, 2), (2, 4, 7, 7)), ((5, 5), (2, 5, 5, 9)),
                           ((3, 6, True), (2, 3, 6, 6)), ((6, 4, True, 3), (2, 6, 7, 8))]:
        what = f"{rc.call_text('Residual', args)} on a {in_shape} input"
        y = rc.run_block(student, "Residual", args, rc.train_forward(randn(in_shape)), what)[1]["y"]
        want = expected_shape(args, in_shape)
        expect_shape(y, want, what, shape_diagnosis(
            y, want, "With stride s both paths map H to floor((H - 1) / s) + 1 (3x3 conv with padding 1; "
                     "1x1 conv without padding) and the channels to out_channels."))


# The argument space, case by case (which mistake each case separates):
#   Residual.shapes         (4, 8, True, 2) 7x7   flag on, channels and size change, odd size: floor((7-1)/2)+1 = 4
#                           (5, 5) 5x9            flag off, defaults: nothing changes, non-square odd input
#                           (3, 6, True) 6x6      flag on, stride left at its default 1: a stride default other than 1
#                           (6, 4, True, 3) 7x8   stride 3, fewer channels: strides hard-wired to 2, "out = 2*in"
#   Residual.values_identity   (3, 3) 6x6         identity shortcut: order of BN / ReLU / addition on the main path
#   Residual.values_projection (3, 6, True, 2) 7x7  projection with shape change: stride on conv1 and the 1x1 conv
#   Residual.use_1x1conv    (4, 4, True) 5x5      flag on WITHOUT a shape change: the shortcut chosen by shape
#                                                  (in != out or stride != 1) ignores use_1x1conv and runs no 1x1 conv
#                           (4, 8, True, 1) 5x6   channels change at stride 1: projection chosen by "stride != 1"
#                           (4, 4, True, 2) 5x5   same channels, stride 2: projection chosen by "in != out"
#   (c, 2c, False) is not judged: the specification itself cannot add the two paths there.


@check("Residual.values_identity", "Residual", 3, "Residual(3, 3) output recomputed from its own weights", hidden=True)
def values_identity(student):
    residual_values(student, (3, 3), (4, 3, 6, 6))


@check("Residual.values_projection", "Residual", 3,
       "Residual(3, 6, True, 2) output recomputed from its own weights (7x7 input)", hidden=True)
def values_projection(student):
    residual_values(student, (3, 6, True, 2), (4, 3, 7, 7))


@check("Residual.use_1x1conv", "Residual", 2, "Residual: use_1x1conv alone decides the shortcut (Residual(4, 4, True), "
       "(4, 8, True, 1), (4, 4, True, 2) recomputed from their own weights)", hidden=True)
def use_1x1conv(student):
    for args, in_shape in [((4, 4, True), (3, 4, 5, 5)), ((4, 8, True, 1), (3, 4, 5, 6)), ((4, 4, True, 2), (3, 4, 5, 5))]:
        residual_values(student, args, in_shape)


def eval_shape(student, name, args, in_shape, out_shape, hint):
    """One training pass (so moving statistics exist), then eval mode: same shape, finite values."""
    x = randn(in_shape)
    what = f"{rc.call_text(name, args)} in eval mode on a {in_shape} input"
    ops = rc.train_forward(x) + [{"op": "eval"}, {"op": "forward", "x": x, "no_grad": True}]
    y = expect_shape(rc.run_block(student, name, args, ops, what)[3]["y"], out_shape, what, hint)
    expect_finite(y, what)


@check("Residual.eval_mode", "Residual", 1, "Residual works after model.eval()", hidden=True)
def eval_mode(student):
    eval_shape(student, "Residual", (3, 6, True, 2), (2, 3, 7, 7), (2, 6, 4, 4),
               "In eval mode the BN layers use their moving statistics; the block's shapes do not change.")


# ---- gradients: judged only for gradient reasons ---------------------------

def gradients_match(student, name, args, in_shape, out_shape, layers_of, recompute, convs_of):
    """Backpropagate a fixed grad_output through the student's block and compare with autograd through the
    grader's float64 recomputation from the student's own weights.

    Only gradient faults fail here: when the output has the wrong shape, the structure cannot be read, or the
    forward values differ from the recomputation, this check passes and says nothing (the shape, structure and
    value checks report those). What fails: no gradient reaches the input, a conv weight that ran gets no
    gradient, or a gradient differs from the recomputation's (e.g. .detach() / .data on part of a path)."""
    x = randn(in_shape)
    g = randn(out_shape, seed=11)
    what = f"{rc.call_text(name, args)} (backward)"
    ops = rc.train_forward(x, trace=True, grad_output=g, grad_shape_guard=True)
    forward = rc.run_block(student, name, args, ops, what)[1]
    y = forward.get("y")
    if not isinstance(y, Returned) or tuple(y.value.shape) != tuple(out_shape):
        return
    try:
        layers = layers_of(forward["trace"], what)
    except Fail:
        return
    if not rc.close(y.value, recompute(x, layers)):
        return
    expect(isinstance(forward.get("x_grad"), Returned),
           f"{what}: the output is not connected to the input by autograd (no gradient reached X). "
           f"Hint: do not use .detach(), .data, numpy or torch.no_grad() inside forward.")
    grads = forward.get("param_grads") or {}
    # a weight computed from a parameter (a view, a standardised weight) has no name to read its gradient by
    labelled = [(label, conv) for label, conv in convs_of(layers) if (conv.raw.get("weight") or {}).get("name")]
    for label, conv in labelled:
        pname = (conv.raw.get("weight") or {}).get("name")
        grad = grads.get(pname) if pname else None
        if not isinstance(grad, Returned) or not bool(grad.value.abs().sum() > 0):
            raise Fail(f"{what}: no gradient reached the weight of {label} "
                       f"({pname or 'not a registered parameter of the block'}). Hint: every layer must be a "
                       f"registered submodule used in forward, with no .detach() / .data / torch.no_grad() in between.")
    leaves, expected = rc.recomputed_gradients(x, g, layers, recompute)
    hint = ("The values are right but the gradient is not: something in forward hides part of the computation "
            "from autograd (.detach(), .data, a custom backward, an in-place change of a saved tensor).")
    rc.compare_grad(forward["x_grad"].value, expected, f"{what}: the gradient with respect to X", hint)
    for label, conv in labelled:
        grad = grads[conv.raw["weight"]["name"]].value
        rc.compare_grad(grad, leaves[conv.ident].grad, f"{what}: the gradient of the weight of {label}", hint)


RESIDUAL_CONVS = (("the first 3x3 conv", "conv1"), ("the second 3x3 conv", "conv2"), ("the 1x1 shortcut conv", "shortcut"))


@check("Residual.gradients", "Residual", 1, "Residual: gradients reach the input and every conv weight, and equal "
       "autograd through the recomputation", hidden=True)
def gradients(student):
    args = (3, 6, True, 2)
    stride = rc.residual_args(args)[3]
    gradients_match(student, "Residual", args, (2, 3, 7, 7), (2, 6, 4, 4),
                    lambda trace, what: rc.residual_layers(trace, args, what),
                    lambda x, layers: rc.residual(x, layers, stride),
                    lambda layers: [(label, layers[k]) for label, k in RESIDUAL_CONVS if layers[k] is not None])


# ---- devices: every machine checks 'meta'; a GPU machine also checks 'cuda' --

DEVICE_HINT = ("A tensor the block keeps as a plain attribute (self.t = torch.zeros(...)) does not move with "
               "block.to(device), and one created in forward() without device=X.device is on the CPU: register "
               "it with self.register_buffer(name, tensor) (or make it an nn.Parameter), or create it on X.device.")


def devices(student, name, args, in_shape, out_shape):
    """Build the block, move it with .to(device), run a training-mode forward pass (traced) and an eval-mode
    one on an input on that device. 'meta' tensors have shapes but no values, so this runs on any machine and
    fails exactly where a tensor was left behind on the CPU; on a machine with a GPU, 'cuda' is checked too."""
    x = randn(in_shape)
    call = rc.call_text(name, args)
    available = ["meta"]
    for device in ("meta", "cuda"):
        if device not in available:
            continue
        what = f"{call} moved with .to('{device}') and run on a '{device}' input"
        # a CPU pass first, as PyTorch asks for lazy layers (moving an unmaterialised one to 'meta' breaks it)
        ops = [{"op": "devices"}, {"op": "forward", "x": x, "no_grad": True}, {"op": "to", "device": device},
               {"op": "train"}, {"op": "forward", "x": x, "device": device, "trace": True, "trace_values": False},
               {"op": "eval"}, {"op": "forward", "x": x, "device": device, "no_grad": True}]
        try:
            answers = student.probe("module", name=name, ctor_args=list(args), seed=rc.SEED, ops=ops)
        except StudentError as exc:
            text = str(exc)
            if "not implemented yet" in text or "is not defined" in text:
                raise StudentError(f"{what}: {text}") from None
            raise Fail(f"{what}: it failed ({text}). Hint: {DEVICE_HINT}") from None
        available = answers[0] if isinstance(answers[0], list) else ["meta"]
        for mode, answer in (("training", answers[4]), ("eval", answers[6])):
            y = answer.get("y")
            got = y.get("device") if isinstance(y, dict) else getattr(y, "device", None)
            if not str(got).startswith(device):
                raise Fail(f"{what}: in {mode} mode the output is on {got}, expected {device}. Hint: {DEVICE_HINT}")
            shape = y.get("shape") if isinstance(y, dict) else list(y.value.shape)
            if tuple(shape or ()) != tuple(out_shape):
                raise Fail(f"{what}: in {mode} mode the output has shape {tuple(shape or ())}, expected {out_shape}.")
        for op in rc.parse(answers[4].get("trace")):
            for role, w in op.params.items():
                if isinstance(w, dict) and not str(w.get("device")).startswith(device):
                    label = w.get("name") or "a tensor that is not a registered parameter or buffer"
                    raise Fail(f"{what}: {op.fn} used {label} ({role}) on {w.get('device')}. Hint: {DEVICE_HINT}")


@check("Residual.device", "Residual", 1, "Residual(3, 6, True, 2) moves with .to(device): runs on 'meta' "
       "(and on 'cuda' where there is a GPU)", hidden=True)
def device(student):
    devices(student, "Residual", (3, 6, True, 2), (2, 3, 7, 7), (2, 6, 4, 4))

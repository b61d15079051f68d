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

from ..core.check import Fail, check, expect, expect_finite, expect_shape, tensor
from ..reference import blocks as rc
from ..core.student import Returned

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
    got = expect_shape(answer["y"], expected_shape(args, in_shape), what, GENERIC_HINT)
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
        expect_shape(y, expected_shape(args, in_shape), what,
                     "With stride s both paths map H to floor((H - 1) / s) + 1 (3x3 conv with padding 1; "
                     "1x1 conv without padding) and the channels to out_channels.")


@check("Residual.values_identity", "Residual", 3, "Residual(3, 3) output recomputed from its own weights", hidden=True)
def values_identity(student):
    residual_values(student, (3, 3), (4, 3, 6, 6))


@check("Residual.values_projection", "Residual", 3,
       "Residual(3, 6, True, 2) output recomputed from its own weights (7x7 input)", hidden=True)
def values_projection(student):
    residual_values(student, (3, 6, True, 2), (4, 3, 7, 7))


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


def gradients_reach(student, name, args, in_shape, out_shape, convs_of):
    """Backpropagate a fixed grad_output: the input and the weight of every conv that ran must get a
    non-zero gradient. Weights are matched to registered names by value (they are random)."""
    x = randn(in_shape)
    g = randn(out_shape, seed=11)
    what = f"{rc.call_text(name, args)} (backward)"
    ops = rc.train_forward(x, trace=True, grad_output=g) + [{"op": "state"}]
    answers = rc.run_block(student, name, args, ops, what)
    forward, state = answers[1], answers[2]
    expect_shape(forward["y"], out_shape, what)
    expect(isinstance(forward.get("x_grad"), Returned),
           f"{what}: the output is not connected to the input by autograd (no gradient reached X). "
           f"Hint: do not use .detach(), .data, numpy or torch.no_grad() inside forward.")
    grads = forward.get("param_grads") or {}
    for label, conv in convs_of(forward["trace"], what):
        pname = param_name(state["params"], conv.raw["weight"])
        grad = grads.get(pname) if pname else None
        if not isinstance(grad, Returned) or not bool(grad.value.abs().sum() > 0):
            raise Fail(f"{what}: no gradient reached the weight of {label} "
                       f"({pname or 'not a registered parameter of the block'}). Hint: every layer must be a "
                       f"registered submodule used in forward, with no .detach() / .data / torch.no_grad() in between.")


def param_name(params, value):
    """The registered name of the parameter whose value is ``value`` (matched by value; weights are random)."""
    want = tensor(value, "parameter")
    for name, p in params.items():
        if isinstance(p, Returned) and p.value.shape == want.shape and torch.equal(p.value, want):
            return name
    return None


@check("Residual.gradients", "Residual", 1, "Residual: gradients reach the input and every conv weight", hidden=True)
def gradients(student):
    args = (3, 6, True, 2)

    def convs_of(trace, what):
        layers = rc.residual_layers(trace, args, what)
        return [(label, layers[k]) for label, k in (("the first 3x3 conv", "conv1"), ("the second 3x3 conv", "conv2"),
                                                    ("the 1x1 shortcut conv", "shortcut")) if layers[k] is not None]
    gradients_reach(student, "Residual", args, (2, 3, 7, 7), (2, 6, 4, 4), convs_of)

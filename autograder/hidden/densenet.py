"""Hidden checks for DenseBlock and transition_block: channel formulas, values recomputed from the
student's weights, eval mode, gradients.

    DenseBlock(n, c, g): out_channels = c + n*g; X_{i+1} = cat((X_i, conv3x3_i(ReLU(BN_i(X_i)))), dim=1)
    transition_block(c, k): AvgPool2d(2, stride 2)(conv1x1_{c→k}(ReLU(BN(x)))), H -> floor(H / 2)

Values are recomputed in float64 (``autograder/recompute.py``) from one traced
training-mode forward pass; when they differ, a few known mistakes are
recomputed from the same weights to name the mistake.
"""
import torch
from torch.nn import functional as F

from ..core.check import check, expect_shape
from ..reference import blocks as rc
from ..checks.densenet import DENSE_HINT, TRANSITION_HINT, expect_out_channels, shape_diagnosis
from .residual import devices, eval_shape, gradients_match, randn

DENSE_FORMULA = "X ← cat((X, conv3x3(ReLU(BN(X)))), dim=1) for each conv block"
TRANSITION_FORMULA = "BN → ReLU → conv1x1 → AvgPool2d(2, stride 2)"


@check("DenseBlock.out_channels", "DenseBlock", 2, "DenseBlock: out_channels and output shape for other configurations",
       hidden=True)
def dense_out_channels(student):
    for (n, c, g), hw in [((3, 5, 4), (6, 6)), ((1, 2, 7), (5, 3)), ((4, 64, 32), (3, 3))]:
        args = (n, c, g)
        in_shape = (2, c) + hw
        what = f"{rc.call_text('DenseBlock', args)} on a {in_shape} input"
        answers = rc.run_block(student, "DenseBlock", args, rc.train_forward(randn(in_shape)) +
                               [{"op": "attr", "path": "out_channels"}], what)
        expect_shape(answers[1]["y"], (2, c + n * g) + hw, what,
                     shape_diagnosis("DenseBlock", args, answers[1]["y"], (2, c + n * g) + hw, DENSE_HINT))
        expect_out_channels(answers[2], c + n * g, rc.call_text("DenseBlock", args))


def dense_mistakes(x, layers):
    return [
        (rc.dense_block(x, layers, input_first=False),
         "torch.cat puts each conv block's output before its input; the input comes first: torch.cat((X, Y), dim=1)."),
        (no_relu_dense(x, layers), "the ReLU between each BN and its conv is missing: BN → ReLU → conv3x3."),
    ]


def no_relu_dense(x, layers):
    x = x.double()
    for norm, layer in layers:
        x = torch.cat((x, rc.conv(rc.batch_norm(x, norm), layer, 1, 1)), dim=1)
    return x


# The argument space (which mistake each case separates):
#   DenseBlock.values (3, 3, 4) 5x5   several conv blocks, growth != in_channels: input sizes in_c + i*growth,
#                                      order of the concatenation, BN → ReLU → conv order
#                     (1, 5, 3) 5x7   num_convs 1, odd non-square input: range(num_convs - 1) / range(1, n) slips,
#                                      padding on non-square inputs
#                     (2, 4, 4) 6x6   growth == in_channels: in_channels and growth swapped goes unnoticed elsewhere
#   DenseBlock.out_channels           (3, 5, 4), (1, 2, 7), (4, 64, 32): the attribute for num_convs 1 and several
DENSE_CASES = [((3, 3, 4), (4, 3, 5, 5)), ((1, 5, 3), (4, 5, 5, 7)), ((2, 4, 4), (3, 4, 6, 6))]


def dense_shape(y, args, in_shape, what):
    """The output's shape, or Fail naming what the shape says went wrong."""
    n, c, g = args
    want = (in_shape[0], c + n * g) + tuple(in_shape[2:])
    return expect_shape(y, want, what, shape_diagnosis("DenseBlock", args, y, want, DENSE_HINT))


@check("DenseBlock.values", "DenseBlock", 3, "DenseBlock (3, 3, 4), (1, 5, 3), (2, 4, 4) outputs recomputed from their "
       "own weights", hidden=True)
def dense_values(student):
    for args, in_shape in DENSE_CASES:
        x = randn(in_shape)
        what = f"{rc.call_text('DenseBlock', args)} on a {in_shape} input"
        answer = rc.run_block(student, "DenseBlock", args, rc.train_forward(x, trace=True), what)[1]
        got = dense_shape(answer["y"], args, in_shape, what)
        layers = rc.dense_layers(answer["trace"], args, what)
        notes = rc.config_notes([(f"the conv of conv block {i + 1}", conv, 1, 1) for i, (_, conv) in enumerate(layers)])
        rc.compare(got, rc.dense_block(x, layers), what, DENSE_FORMULA, dense_mistakes(x, layers),
                   notes + "Each conv block runs BN → ReLU → conv3x3(padding 1) on everything so far, and its output "
                   "is concatenated after it: X = torch.cat((X, Y), dim=1)." + rc.own_bn_note([n for n, _ in layers]))


@check("DenseBlock.eval_mode", "DenseBlock", 1, "DenseBlock works after model.eval()", hidden=True)
def dense_eval(student):
    eval_shape(student, "DenseBlock", (2, 3, 10), (2, 3, 5, 5), (2, 23, 5, 5),
               "In eval mode the BN layers use their moving statistics; the block's shapes do not change.")


@check("DenseBlock.gradients", "DenseBlock", 1, "DenseBlock: gradients reach the input and every conv weight, and "
       "equal autograd through the recomputation", hidden=True)
def dense_gradients(student):
    args = (3, 3, 4)
    gradients_match(student, "DenseBlock", args, (2, 3, 5, 5), (2, 15, 5, 5),
                    lambda trace, what: rc.dense_layers(trace, args, what), rc.dense_block,
                    lambda layers: [(f"the conv of conv block {i + 1}", conv) for i, (_, conv) in enumerate(layers)])


@check("DenseBlock.device", "DenseBlock", 1, "DenseBlock(2, 3, 4) moves with .to(device): runs on 'meta' "
       "(and on 'cuda' where there is a GPU)", hidden=True)
def dense_device(student):
    devices(student, "DenseBlock", (2, 3, 4), (2, 3, 5, 5), (2, 11, 5, 5))


@check("transition_block.shapes", "transition_block", 2,
       "transition_block output shapes: channels set by its argument, height and width halved (odd sizes too)",
       hidden=True)
def transition_shapes(student):
    for args, in_shape, out_shape in [((12, 6), (2, 12, 7, 7), (2, 6, 3, 3)), ((10, 5), (2, 10, 9, 6), (2, 5, 4, 3)),
                                      ((192, 96), (1, 192, 4, 4), (1, 96, 2, 2)), ((8, 8), (2, 8, 5, 5), (2, 8, 2, 2))]:
        what = f"{rc.call_text('transition_block', args)} on a {in_shape} input"
        y = rc.run_block(student, "transition_block", args, rc.train_forward(randn(in_shape)), what)[1]["y"]
        expect_shape(y, out_shape, what, shape_diagnosis(
            "transition_block", args, y, out_shape, TRANSITION_HINT + " The number of output channels is the "
            "out_channels argument (the DenseNet passes half its channels; the block itself does not halve them)."))


def transition_mistakes(x, layers):
    norm, layer = layers
    x64 = x.double()
    return [
        (rc.transition(x, layers, pool=F.max_pool2d), "the pooling is max pooling; a transition block averages: "
                                                      "nn.AvgPool2d(kernel_size=2, stride=2)."),
        (F.avg_pool2d(rc.conv(rc.batch_norm(x64, norm), layer), 2, 2), "the ReLU after the BN is missing."),
        (F.avg_pool2d(F.relu(rc.conv(rc.batch_norm(x64, norm), layer)), 2, 2),
         "the ReLU runs after the conv; it belongs between the BN and the conv: BN → ReLU → conv1x1."),
        (rc.conv(F.relu(rc.batch_norm(F.avg_pool2d(x64, 2, 2), norm)), layer),
         "the pooling runs first, so the BN sees pooled statistics; pool last: BN → ReLU → conv1x1 → AvgPool."),
    ]


# The argument space (which mistake each case separates):
#   transition_block.values (6, 3) 7x5   out = in / 2, odd sizes: pooling floors, BN / ReLU / pool order
#                           (4, 4) 6x6   out == in: a block that halves the channels itself
#                           (3, 5) 5x5   out > in: channels come from out_channels, not from in_channels
TRANSITION_CASES = [((6, 3), (4, 6, 7, 5)), ((4, 4), (3, 4, 6, 6)), ((3, 5), (3, 3, 5, 5))]


@check("transition_block.values", "transition_block", 3,
       "transition_block (6, 3), (4, 4), (3, 5) outputs recomputed from their own weights (odd sizes)", hidden=True)
def transition_values(student):
    for args, in_shape in TRANSITION_CASES:
        x = randn(in_shape)
        what = f"{rc.call_text('transition_block', args)} on a {in_shape} input"
        answer = rc.run_block(student, "transition_block", args, rc.train_forward(x, trace=True), what)[1]
        got = expect_shape(answer["y"], (in_shape[0], args[1], in_shape[2] // 2, in_shape[3] // 2), what,
                           TRANSITION_HINT)
        layers = rc.transition_layers(answer["trace"], args, what)
        rc.compare(got, rc.transition(x, layers), what, TRANSITION_FORMULA, transition_mistakes(x, layers),
                   rc.config_notes([("the 1x1 conv", layers[1], 1, 0)]) + TRANSITION_HINT
                   + " The BN comes first and normalises the block's input." + rc.own_bn_note([layers[0]]))


@check("transition_block.eval_and_gradients", "transition_block", 1,
       "transition_block works after model.eval(), and its gradients equal autograd through the recomputation",
       hidden=True)
def transition_eval_and_gradients(student):
    eval_shape(student, "transition_block", (6, 3), (2, 6, 7, 5), (2, 3, 3, 2),
               "In eval mode the BN uses its moving statistics; the block's shapes do not change.")
    gradients_match(student, "transition_block", (6, 3), (2, 6, 7, 5), (2, 3, 3, 2),
                    lambda trace, what: rc.transition_layers(trace, (6, 3), what), rc.transition,
                    lambda layers: [("the 1x1 conv", layers[1])])


@check("transition_block.device", "transition_block", 1, "transition_block(6, 3) moves with .to(device): runs on "
       "'meta' (and on 'cuda' where there is a GPU)", hidden=True)
def transition_device(student):
    devices(student, "transition_block", (6, 3), (2, 6, 7, 5), (2, 3, 3, 2))

"""Public checks for DenseBlock and transition_block: seed 002's examples, shapes only.

    DenseBlock(2, 3, 10) on a (4, 3, 8, 8) input     -> (4, 23, 8, 8), out_channels == 23
    transition_block(23, 10) on a (4, 23, 8, 8) input -> (4, 10, 4, 4)

A dense block concatenates its input with every conv block's output along
channels: out_channels = in_channels + num_convs * growth (here 3 + 2*10).
A transition block's 1x1 conv sets the channels and AvgPool2d(2, stride 2)
halves height and width (floor(H / 2)).
"""
from ..core.check import Fail, check, describe, expect_shape
from ..reference.blocks import call_text, run_block, train_forward
from .residual import seed_input

DENSE_HINT = ("The output is torch.cat((X, Y_1, ..., Y_n), dim=1): the input and every conv block's output, "
              "so in_channels + num_convs·out_channels channels, same height and width (3x3 convs with padding 1).")
TRANSITION_HINT = ("transition_block: BN → ReLU → conv1x1(in_channels → out_channels) → AvgPool2d(kernel_size=2, "
                   "stride=2), which halves height and width.")


def shape_diagnosis(name, args, y, out_shape, hint):
    """A hint that names what a wrong number of output channels says (same height and width expected)."""
    got = getattr(getattr(y, "value", None), "shape", None)
    if got is None or len(got) != 4 or tuple(got) == tuple(out_shape) or tuple(got[2:]) != tuple(out_shape[2:]):
        return hint
    if name == "DenseBlock":
        n, c, g = args
        if got[1] == g:
            return (f"Your block returns only the last conv block's output ({g} channels): return the "
                    f"concatenation of the input and every conv block's output. " + hint)
        if n > 1 and got[1] == c + g:
            return (f"Your block concatenates the input with only the last conv block's output ({c} + {g} "
                    f"channels): every conv block's output joins the features, X = torch.cat((X, Y), dim=1) "
                    f"inside the loop. " + hint)
    if name == "transition_block" and got[1] == args[0] // 2 != args[1]:
        return (f"Your block halves the channels itself ({args[0]} // 2 = {got[1]}); the 1x1 conv maps to the "
                f"out_channels argument ({args[1]}). " + hint)
    return hint


def block_shape(student, name, args, in_shape, out_shape, hint):
    what = f"{call_text(name, args)} on a {in_shape} input"
    answers = run_block(student, name, args, train_forward(seed_input(in_shape)), what)
    y = answers[1]["y"]
    expect_shape(y, out_shape, what, shape_diagnosis(name, args, y, out_shape, hint))


def expect_out_channels(value, expected, what):
    if type(value) is not int or value != expected:
        got = value if type(value) is int else describe(value)
        raise Fail(f"{what}.out_channels: expected the int {expected}, got {got}. "
                   f"Hint: out_channels = in_channels + num_convs * out_channels (the growth per conv block); "
                   f"the DenseNet reads it to size the next layer.")


@check("DenseBlock.seed_shape", "DenseBlock", 1, "DenseBlock(2, 3, 10) maps (4, 3, 8, 8) to (4, 23, 8, 8)")
def dense_seed_shape(student):
    block_shape(student, "DenseBlock", (2, 3, 10), (4, 3, 8, 8), (4, 23, 8, 8), DENSE_HINT)


@check("DenseBlock.seed_out_channels", "DenseBlock", 1, "DenseBlock(2, 3, 10).out_channels == 23")
def dense_seed_out_channels(student):
    what = call_text("DenseBlock", (2, 3, 10))
    value = run_block(student, "DenseBlock", (2, 3, 10), [{"op": "attr", "path": "out_channels"}], what)[0]
    expect_out_channels(value, 23, what)


@check("transition_block.seed_shape", "transition_block", 1, "transition_block(23, 10) maps (4, 23, 8, 8) to (4, 10, 4, 4)")
def transition_seed_shape(student):
    block_shape(student, "transition_block", (23, 10), (4, 23, 8, 8), (4, 10, 4, 4), TRANSITION_HINT)

"""Public checks for Residual: seed 002's two examples, shapes only.

    Residual(3, 3) on a (4, 3, 6, 6) input            -> (4, 3, 6, 6)
    Residual(3, 6, True, 2) on a (4, 3, 6, 6) input   -> (4, 6, 3, 3)

With stride s, a 3x3 conv with padding 1 maps H to floor((H + 2 - 3) / s) + 1
and the 1x1 shortcut maps H to floor((H - 1) / s) + 1: the same size, so the
two paths can be added.
"""
import torch

from ..core.check import check, expect_shape
from ..reference.blocks import call_text, run_block, train_forward

SHAPE_HINT = ("Residual: conv3x3(padding 1, stride) → BN → ReLU → conv3x3(padding 1) → BN, plus the input "
              "(or its 1x1 conv with the same stride when use_1x1conv=True), then ReLU.")


def seed_input(shape):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(2))


def shape_diagnosis(y, out_shape, hint):
    """A hint that names what a wrong output shape says: lost pixels mean missing padding, a full-size output
    where the stride should halve it means the stride was not passed on."""
    got = getattr(getattr(y, "value", None), "shape", None)
    if got is None or len(got) != 4 or tuple(got) == tuple(out_shape) or got[:2] != tuple(out_shape[:2]):
        return hint
    if got[2] < out_shape[2] or got[3] < out_shape[3]:
        return ("Your output is smaller than expected: a 3x3 conv without padding loses 2 pixels of height and "
                "width; both 3x3 convs need padding=1. " + hint)
    return ("Your output is larger than expected: the stride is not applied; stride=stride on the first 3x3 "
            "conv and on the 1x1 conv. " + hint)


def residual_shape(student, args, in_shape, out_shape, hint=SHAPE_HINT):
    what = f"{call_text('Residual', args)} on a {in_shape} input"
    y = run_block(student, "Residual", args, train_forward(seed_input(in_shape)), what)[1]["y"]
    expect_shape(y, out_shape, what, shape_diagnosis(y, out_shape, hint))


@check("Residual.seed_same_shape", "Residual", 1, "Residual(3, 3) keeps a (4, 3, 6, 6) input's shape")
def seed_same_shape(student):
    residual_shape(student, (3, 3), (4, 3, 6, 6), (4, 3, 6, 6),
                   "Without the 1x1 conv the input is added as it is, so the output has the input's shape.")


@check("Residual.seed_downsample_shape", "Residual", 1, "Residual(3, 6, True, 2) maps (4, 3, 6, 6) to (4, 6, 3, 3)")
def seed_downsample_shape(student):
    residual_shape(student, (3, 6, True, 2), (4, 3, 6, 6), (4, 6, 3, 3),
                   "The first 3x3 conv and the 1x1 shortcut conv both take stride=2 and map 3 to 6 channels; "
                   "the second 3x3 conv keeps 6 channels and stride 1.")

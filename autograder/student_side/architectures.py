"""Whole networks from the student's blocks: seed 002's ResNet-18 and DenseNet, layer by layer.

``run`` assembles the network the way the lesson does, with the student's
``Residual`` (ResNet-18) or ``DenseBlock`` and ``transition_block`` (DenseNet)
and PyTorch's own layers for everything else, then sends one input through it
child by child, in eval mode without gradients (shapes are all that is
reported, and that is the cheapest way to get them), and returns each named
child's output shape:

    {"rows": [[name, [n, c, h, w]], ...], "failed": None or {"layer": name, "message": text},
     "out_channels": {DenseBlock layer name: its out_channels attribute}}

The first layer that cannot be built or run ends the table; ``failed`` names it
and says why. An untouched stub's NotImplementedError is passed on unchanged.
Names follow the seed's printout (its ``DenseBlosk_i`` typo spelled ``DenseBlock_i``).

ResNet-18 (input (1, 1, 224, 224)): conv7x7(64, stride 2, padding 3), BN, ReLU,
maxpool(3, stride 2, padding 1); resnet_block1 = 2 x Residual(64, 64);
resnet_block2..4 = Residual(c, 2c, True, 2), Residual(2c, 2c) for 64→128→256→512;
global average pool; Flatten + Linear(512, 10).

DenseNet (input (1, 1, 96, 96)): the same stem; DenseBlock(4, c, 32) four times
(c from the previous block's ``out_channels``), with ``transition_block(c, c // 2)``
between them; BN, ReLU, global average pool, Flatten + Linear(c, 10).
"""
import operator

import torch
from torch import nn

from .loader import describe_error
from .base import ProbeError, lookup, seed_all


class LayerFailed(Exception):
    def __init__(self, layer, message):
        super().__init__(message)
        self.layer, self.message = layer, message


def stem():
    return [("0", nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3)), ("1", nn.BatchNorm2d(64)),
            ("2", nn.ReLU()), ("3", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]


def head(channels):
    return [("global_avg_pool", nn.AdaptiveAvgPool2d(1)), ("fc", nn.Sequential(nn.Flatten(), nn.Linear(channels, 10)))]


def student_call(layer, factory, name, *args):
    """factory(*args) as a module, or LayerFailed naming the layer and the call."""
    call = f"{name}({', '.join(repr(a) for a in args)})"
    try:
        obj = factory(*args)
    except (NotImplementedError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise LayerFailed(layer, f"building {call}: {describe_error(exc, 'your code')}") from None
    if not isinstance(obj, nn.Module):
        raise LayerFailed(layer, f"{call} gave a {type(obj).__name__}, expected an nn.Module")
    return obj


def resnet18(names, out_channels):
    """Yields (name, layer) in order, building each only when it is reached."""
    Residual = lookup(names, "Residual")
    yield from stem()
    stages = [(64, 64, True), (64, 128, False), (128, 256, False), (256, 512, False)]
    for i, (in_c, out_c, first) in enumerate(stages, start=1):
        name = f"resnet_block{i}"
        if first:
            blocks = [student_call(name, Residual, "Residual", out_c, out_c) for _ in range(2)]
        else:
            blocks = [student_call(name, Residual, "Residual", in_c, out_c, True, 2),
                      student_call(name, Residual, "Residual", out_c, out_c)]
        yield name, nn.Sequential(*blocks)
    yield from head(512)


def densenet(names, out_channels):
    DenseBlock = lookup(names, "DenseBlock")
    transition_block = lookup(names, "transition_block")
    yield from stem()
    channels, growth, num_convs = 64, 32, [4, 4, 4, 4]
    for i, n in enumerate(num_convs):
        name = f"DenseBlock_{i}"
        block = student_call(name, DenseBlock, "DenseBlock", n, channels, growth)
        try:
            channels = operator.index(block.out_channels)
        except (AttributeError, TypeError) as exc:
            raise LayerFailed(name, f"DenseBlock({n}, {channels}, {growth}).out_channels is needed to size the next "
                                    f"layer, but reading it as an int failed ({type(exc).__name__}: {exc})") from None
        out_channels[name] = channels
        yield name, block
        if i != len(num_convs) - 1:
            name = f"transition_block_{i}"
            yield name, student_call(name, transition_block, "transition_block", channels, channels // 2)
            channels //= 2
    yield "BN", nn.BatchNorm2d(channels)
    yield "relu", nn.ReLU()
    yield from head(channels)


ARCHITECTURES = {"resnet18": resnet18, "densenet": densenet}


def run(names, arch, input_shape, seed=0):
    if arch not in ARCHITECTURES:
        raise ProbeError(f"unknown architecture {arch!r}")
    seed_all(seed)
    x = torch.rand(*input_shape)
    rows, failed, out_channels = [], None, {}
    layers = ARCHITECTURES[arch](names, out_channels)
    with torch.no_grad():
        while True:
            try:
                name, layer = next(layers)
            except StopIteration:
                break
            except LayerFailed as exc:
                failed = {"layer": exc.layer, "message": exc.message}
                break
            try:
                layer.eval()
                x = layer(x)
            except (NotImplementedError, KeyboardInterrupt):
                raise
            except BaseException as exc:
                failed = {"layer": name, "message": f"running it on a {tuple(x.shape)} input: "
                                                    f"{describe_error(exc, 'your code')}"}
                break
            if not isinstance(x, torch.Tensor):
                failed = {"layer": name, "message": f"it returned a {type(x).__name__}, not a tensor"}
                break
            rows.append([name, [int(d) for d in x.shape]])
    return {"rows": rows, "failed": failed, "out_channels": out_channels}

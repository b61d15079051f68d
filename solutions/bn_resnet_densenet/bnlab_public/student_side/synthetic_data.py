"""An offline stand-in for Fashion-MNIST: 28x28 grey images of ten shapes, made from a seed.

Used when Fashion-MNIST is not on disk; it never needs the network. Each image
draws one of ten stroke shapes (bars, diagonals, ring, disk, cross, X, square,
two blobs) with a random shift, scale, rotation, stroke width and contrast,
over a faint distracting stroke and pixel noise::

    ink(p)   = sigmoid((w - d_c(R·(p - t)/s)) / 0.04)      d_c: distance to class c's stroke
    image(p) = clamp(a·ink(p) + b·clutter(p) + 0.25·noise(p), 0, 1)

so that LeNet learns it within a hundred steps while an untrained network is
at chance (10%). Images are ``uint8`` in ``[0, 255]`` laid out like
torchvision's ``FashionMNIST.data`` (N, 28, 28); labels are ``int64``.

Determinism: chunk ``k`` of ``CHUNK`` images is drawn from its own CPU
``torch.Generator`` seeded with ``seed * 100003 + k``, with balanced labels
inside each chunk. So ``make(n, seed)`` is the first ``n`` images of
``make(N, seed)`` for any ``N >= n``, and the same on every run.

This file is the one definition of the data set: the grader's training check
(``autograder/data.py``) and the notebooks' ``train_utils.py`` both load it.
It needs only torch.
"""
import contextlib
import math

import torch

NAME = "synthetic-shapes"
CLASSES = ("horizontal bar", "vertical bar", "diagonal \\", "diagonal /", "ring",
           "disk", "cross", "X", "square", "two blobs")
SIZE = 28
TRAIN_SEED, TEST_SEED = 20240, 20241
CHUNK = 1000


def _radius(u, v):
    return torch.sqrt(u * u + v * v)


def _diagonal(u, v, sign):
    return (u - sign * v).abs() / math.sqrt(2.0)


def _box(u, v):
    return torch.maximum(u.abs(), v.abs())


def _blobs(u, v):
    return (torch.minimum(_radius(u - 0.5, v - 0.5), _radius(u + 0.5, v + 0.5)) - 0.22).clamp(min=0)


# distance of a pixel at (u, v) from each class's stroke (0 on the stroke)
SHAPES = (
    lambda u, v: v.abs() + (u.abs() - 0.75).clamp(min=0),                               # horizontal bar
    lambda u, v: u.abs() + (v.abs() - 0.75).clamp(min=0),                               # vertical bar
    lambda u, v: _diagonal(u, v, 1) + (_radius(u, v) - 0.8).clamp(min=0),              # diagonal \
    lambda u, v: _diagonal(u, v, -1) + (_radius(u, v) - 0.8).clamp(min=0),             # diagonal /
    lambda u, v: (_radius(u, v) - 0.55).abs(),                                          # ring
    lambda u, v: (_radius(u, v) - 0.45).clamp(min=0),                                   # disk
    lambda u, v: torch.minimum(u.abs(), v.abs()) + (_box(u, v) - 0.7).clamp(min=0),     # cross
    lambda u, v: torch.minimum(_diagonal(u, v, 1), _diagonal(u, v, -1))
    + (_radius(u, v) - 0.8).clamp(min=0),                                               # X
    lambda u, v: (_box(u, v) - 0.55).abs(),                                             # square
    _blobs,                                                                             # two blobs
)


def distances(labels, u, v):
    """Distance of each pixel from the stroke of its image's class."""
    d = torch.empty_like(u)
    for c, shape in enumerate(SHAPES):
        idx = (labels == c).nonzero().flatten()
        if idx.numel():
            d[idx] = shape(u[idx], v[idx])
    return d


def render(labels, g):
    """Images (float in [0, 1], shape (n, 28, 28)) for ``labels``, drawing from generator ``g``."""
    n = labels.numel()
    axis = torch.linspace(-1.0, 1.0, SIZE)
    y0, x0 = torch.meshgrid(axis, axis, indexing="ij")

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand((n, 1, 1), generator=g)

    angle = uniform(-0.35, 0.35)
    scale = uniform(0.65, 1.1)
    x = (x0 - uniform(-0.2, 0.2)) / scale
    y = (y0 - uniform(-0.2, 0.2)) / scale
    u = torch.cos(angle) * x + torch.sin(angle) * y
    v = -torch.sin(angle) * x + torch.cos(angle) * y
    width = uniform(0.08, 0.2)
    ink = torch.sigmoid((width - distances(labels, u, v)) / 0.04)
    # a faint straight stroke at a random place and angle, unrelated to the class
    a, c = uniform(0.0, math.pi), uniform(-0.8, 0.8)
    clutter = torch.sigmoid((0.06 - (torch.cos(a) * x0 + torch.sin(a) * y0 - c).abs()) / 0.04)
    image = uniform(0.4, 1.0) * ink + uniform(0.1, 0.5) * clutter
    image = image + 0.2 * torch.randn((n, SIZE, SIZE), generator=g)
    return image.clamp(0.0, 1.0)


def chunk(seed, k):
    """Chunk ``k`` of the data set ``seed``: CHUNK images and balanced labels."""
    g = torch.Generator().manual_seed(int(seed) * 100003 + int(k))
    labels = (torch.arange(CHUNK) % len(CLASSES))[torch.randperm(CHUNK, generator=g)]
    images = (render(labels, g) * 255.0).round().to(torch.uint8)
    return images, labels


@contextlib.contextmanager
def single_thread():
    """One intra-op thread for small tensor work: on a busy machine, OpenMP threads waiting for each
    other make thousands of small operations many times slower (measured: 17 s instead of 0.8 s on
    2 loaded cores). The previous setting is restored."""
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if previous != 1:
            torch.set_num_threads(previous)


def make(n, seed):
    """The first ``n`` images of data set ``seed``: (uint8 tensor (n, 28, 28), int64 tensor (n,))."""
    with single_thread():
        parts = [chunk(seed, k) for k in range((int(n) + CHUNK - 1) // CHUNK)]
    if not parts:
        return torch.empty((0, SIZE, SIZE), dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    images = torch.cat([p[0] for p in parts])[:n]
    labels = torch.cat([p[1] for p in parts])[:n]
    return images, labels


def splits(n_train=60000, n_test=10000):
    """((train images, labels), (test images, labels)); the splits use different seeds."""
    return make(n_train, TRAIN_SEED), make(n_test, TEST_SEED)

"""Images for the training check: Fashion-MNIST when it is on disk, else the synthetic shapes.

Fashion-MNIST is read through ``torchvision.datasets.FashionMNIST`` from
``<root>/FashionMNIST/raw/`` (torchvision's own layout: the four IDX files,
plain or ``.gz``), where ``root`` is ``$BNLAB_DATA`` or ``~/.cache/bnlab/data``.
torchvision is imported only when those files are there (the import alone
costs seconds), so the usual offline grading path never pays for it.

Grading never downloads unless ``BNLAB_DOWNLOAD=1``: a download that works on
one run and not on the next would change the data, and so the scores. Without
the files, the check uses ``synthetic_data`` (ten stroke shapes, generated from
a fixed seed, no network). ``Dataset.name`` says which was used.
"""
import dataclasses
import os
import socket

import torch

from .. import course
from ..student_side import synthetic_data

ROOT_ENV = course.SETTINGS["data"].env
DOWNLOAD_ENV = course.SETTINGS["download"].env
FASHION = "fashion-mnist"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DOWNLOAD_TIMEOUT_S = 30


@dataclasses.dataclass
class Dataset:
    name: str            # FASHION or synthetic_data.NAME
    description: str     # one line for the report: what was used, from where
    train_x: torch.Tensor  # uint8 (N, 28, 28)
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor


def data_root(root=None):
    return os.path.abspath(os.path.expanduser(course.setting("data", root)))


def raw_folder(root):
    return os.path.join(root, "FashionMNIST", "raw")


def fashion_mnist_present(root):
    """Whether the four IDX files are in torchvision's layout under ``root`` (plain or gzip'd)."""
    raw = raw_folder(root)
    return all(os.path.isfile(os.path.join(raw, f)) or os.path.isfile(os.path.join(raw, f + ".gz"))
               for f in IDX_FILES)


def download_wanted(download=None):
    return course.setting("download", download)


def read_fashion_mnist(root, download=False):
    """(train_x, train_y, test_x, test_y) through torchvision; ``.gz`` files are unpacked first.

    Raises RuntimeError (torchvision's "Dataset not found", a download error) or OSError.
    """
    from torchvision.datasets import FashionMNIST       # seconds to import: only here
    from torchvision.datasets.utils import extract_archive

    raw = raw_folder(root)
    for name in IDX_FILES:
        plain, packed = os.path.join(raw, name), os.path.join(raw, name + ".gz")
        if not os.path.isfile(plain) and os.path.isfile(packed):
            extract_archive(packed, raw)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        train = FashionMNIST(root, train=True, download=download)
        test = FashionMNIST(root, train=False, download=download)
    finally:
        socket.setdefaulttimeout(previous)
    return train.data, train.targets, test.data, test.targets


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def load(n_train, n_test, root=None, download=None):
    """The first ``n_train`` training and ``n_test`` test images of the data set in use."""
    root = data_root(root)
    note = ""
    if fashion_mnist_present(root) or download_wanted(download):
        try:
            train_x, train_y, test_x, test_y = read_fashion_mnist(root, download=download_wanted(download))
            if len(train_y) >= n_train and len(test_y) >= n_test:
                return Dataset(FASHION, f"Fashion-MNIST from {raw_folder(root)} (torchvision), "
                                        f"{n_train} training and {n_test} test images",
                               train_x[:n_train].contiguous(), train_y[:n_train].contiguous(),
                               test_x[:n_test].contiguous(), test_y[:n_test].contiguous())
            note = f" (Fashion-MNIST under {root} has only {len(train_y)} training / {len(test_y)} test images)"
        except Exception as exc:  # a missing, truncated or foreign file: fall back, and say why
            note = f" (Fashion-MNIST under {root} could not be read: {first_line(exc)})"
    (train_x, train_y), (test_x, test_y) = synthetic_data.splits(n_train, n_test)
    return Dataset(synthetic_data.NAME,
                   f"synthetic shapes (offline stand-in for Fashion-MNIST, fixed seeds), "
                   f"{n_train} training and {n_test} test images{note}",
                   train_x, train_y, test_x, test_y)

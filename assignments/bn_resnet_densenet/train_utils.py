"""Training helpers for the lesson's notebooks, in the spirit of d2l's ``load_data_fashion_mnist`` and ``train_ch6``.

No dependency on the ``d2l`` package (it pins old library versions):

- ``load_fashion_mnist(batch_size=256, resize=None, root=None, train_size=None)`` -> (train_iter, test_iter):
  Fashion-MNIST through torchvision when it is on disk under ``root`` (default
  ``$BNLAB_DATA`` or ``~/.cache/bnlab/data``) or can be downloaded there; otherwise a
  deterministic offline data set of ten stroke shapes (the same one the grader's
  training check uses). It prints which one you got. ``train_size`` keeps a fixed random
  subset of the training images (the CPU-sized demos); the test set stays whole.
- ``train_net(net, train_iter, test_iter, num_epochs=10, lr=0.9, device=None)`` -> history:
  minibatch SGD on the cross-entropy loss, a progress bar per epoch (tqdm when
  installed, else a text bar), the test accuracy after each epoch, after the first epoch
  how long the rest will take, and at the end
  a plot of the training loss and the train/test accuracy per epoch (matplotlib
  when installed, else a table).

Set ``BNLAB_DOWNLOAD=0`` to never try the network.
"""
import importlib.util
import os
import pathlib
import socket
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

DATA_ENV = "BNLAB_DATA"
DOWNLOAD_ENV = "BNLAB_DOWNLOAD"
DEFAULT_ROOT = os.path.join("~", ".cache", "bnlab", "data")
SYNTHETIC_SIZES = (60000, 10000)   # training and test images of the offline data set, as Fashion-MNIST
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ---- data --------------------------------------------------------------------------------

def synthetic_data_module():
    """The offline data set's generator: the grader's own ``synthetic_data.py``.

    In the assignment folder it is ``bnlab_public/student_side/synthetic_data.py`` (the
    public grader copied beside this file); in the course repository,
    ``autograder/student_side/synthetic_data.py`` in a parent folder. One file, so the
    notebooks and the grader's training check always see the same images.
    """
    here = pathlib.Path(__file__).resolve().parent
    candidates = [here / "bnlab_public" / "student_side" / "synthetic_data.py"]
    candidates += [folder / "autograder" / "student_side" / "synthetic_data.py" for folder in (here, *here.parents)]
    for path in candidates:
        if path.is_file():
            spec = importlib.util.spec_from_file_location("bnlab_synthetic_data", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise RuntimeError("the offline data set's generator (bnlab_public/student_side/synthetic_data.py) is missing "
                       "from the assignment folder; download the assignment again")


def read_fashion_mnist(root, download):
    """uint8 images and int64 labels of both splits, through torchvision."""
    from torchvision.datasets import FashionMNIST  # imported here: it takes seconds
    from torchvision.datasets.utils import extract_archive

    raw = os.path.join(root, "FashionMNIST", "raw")
    for name in IDX_FILES:   # gzip'd files as downloaded by hand: unpack them where torchvision looks
        if not os.path.isfile(os.path.join(raw, name)) and os.path.isfile(os.path.join(raw, name + ".gz")):
            extract_archive(os.path.join(raw, name + ".gz"), raw)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        train = FashionMNIST(root, train=True, download=download)
        test = FashionMNIST(root, train=False, download=download)
    finally:
        socket.setdefaulttimeout(previous)
    return (train.data, train.targets), (test.data, test.targets)


def image_batches(resize):
    """A DataLoader ``collate_fn``: uint8 (B, 28, 28) -> float (B, 1, H, W) in [0, 1], resized if asked."""
    def collate(items):
        x = torch.stack([item[0] for item in items]).float().div_(255.0).unsqueeze(1)
        y = torch.stack([item[1] for item in items])
        if resize:
            size = (resize, resize) if isinstance(resize, int) else tuple(resize)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x, y
    return collate


def load_fashion_mnist(batch_size=256, resize=None, root=None, train_size=None):
    """(train_iter, test_iter): Fashion-MNIST if available, else the offline synthetic shapes.

    Batches are (X, y) with X float (batch, 1, 28, 28) in [0, 1] (or resized to
    ``resize`` x ``resize``) and y int64 labels; the training batches are shuffled.
    ``train_size``: keep only that many training images (a fixed random subset, seed 0).
    """
    root = os.path.abspath(os.path.expanduser(root or os.environ.get(DATA_ENV) or DEFAULT_ROOT))
    download = os.environ.get(DOWNLOAD_ENV, "1") != "0"
    try:
        (train_x, train_y), (test_x, test_y) = read_fashion_mnist(root, download)
        print(f"Fashion-MNIST from {root}: {len(train_y)} training and {len(test_y)} test images.")
    except Exception as exc:  # not on disk, no network, no torchvision, a damaged file: use the offline set
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        synthetic = synthetic_data_module()
        print(f"Fashion-MNIST is not available under {root} ({reason[:120]}).\n"
              f"Using the offline data set instead: {SYNTHETIC_SIZES[0]} training and {SYNTHETIC_SIZES[1]} test "
              f"images of 10 synthetic shapes ({', '.join(synthetic.CLASSES)}), made from fixed seeds.", flush=True)
        (train_x, train_y), (test_x, test_y) = synthetic.splits(*SYNTHETIC_SIZES)
    if train_size is not None and train_size < len(train_y):
        keep = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(0))[:train_size]
        print(f"Training on {train_size} of the {len(train_y)} training images (a fixed random subset).")
        train_x, train_y = train_x[keep], train_y[keep]
    collate = image_batches(resize)
    train_iter = DataLoader(TensorDataset(train_x, train_y), batch_size=batch_size, shuffle=True, collate_fn=collate)
    test_iter = DataLoader(TensorDataset(test_x, test_y), batch_size=batch_size, shuffle=False, collate_fn=collate)
    return train_iter, test_iter


# ---- progress --------------------------------------------------------------------------------

class TextBar:
    """A minimal progress bar for when tqdm is not installed."""

    def __init__(self, iterable, desc, width=30):
        self.iterable, self.desc, self.width = iterable, desc, width
        self.total = len(iterable) if hasattr(iterable, "__len__") else None
        self.postfix = ""

    def __iter__(self):
        for i, item in enumerate(self.iterable, start=1):
            yield item
            self.draw(i)
        print(flush=True)

    def draw(self, i):
        if self.total:
            done = int(self.width * i / self.total)
            bar = f"[{'#' * done}{'.' * (self.width - done)}] {i}/{self.total}"
        else:
            bar = f"{i} batches"
        print(f"\r{self.desc} {bar} {self.postfix}", end="", flush=True)

    def set_postfix_str(self, text):
        self.postfix = text


def progress(iterable, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return TextBar(iterable, desc)
    return tqdm(iterable, desc=desc, file=sys.stdout, leave=True)


# ---- training --------------------------------------------------------------------------------

def init_weights(module):
    """Xavier-uniform weights for Conv2d and Linear layers, as d2l's ``train_ch6`` does."""
    if type(module) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight)


def evaluate_accuracy(net, data_iter, device):
    """Fraction of correct predictions in eval() mode."""
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += int(y.numel())
    return correct / max(total, 1)


def train_net(net, train_iter, test_iter, num_epochs=10, lr=0.9, device=None):
    """Train ``net`` with minibatch SGD on the cross-entropy loss, like d2l's ``train_ch6``.

    Weights of Conv2d/Linear layers are re-initialised (Xavier uniform). ``device``
    defaults to the GPU when PyTorch sees one. Returns a history dict: per-epoch lists
    ``train_loss``, ``train_acc``, ``test_acc``, and ``examples_per_sec``, ``device``,
    ``seconds`` and ``figure`` (the matplotlib figure, or None).
    """
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    net.apply(init_weights)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history = {"epoch": [], "train_loss": [], "train_acc": [], "test_acc": [], "device": str(device)}
    print(f"training on {device}")
    examples, train_seconds = 0, 0.0
    for epoch in range(1, num_epochs + 1):
        net.train()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = progress(train_iter, desc=f"epoch {epoch}/{num_epochs}")
        start = time.perf_counter()
        for X, y in bar:
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            loss = loss_fn(y_hat, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += float(loss) * y.numel()
                correct += int((y_hat.argmax(dim=1) == y).sum())
                seen += int(y.numel())
            bar.set_postfix_str(f"loss {loss_sum / seen:.3f}, train acc {correct / seen:.3f}")
        train_seconds += time.perf_counter() - start
        examples += seen
        test_acc = evaluate_accuracy(net, test_iter, device)
        history["epoch"].append(epoch)
        history["train_loss"].append(loss_sum / max(seen, 1))
        history["train_acc"].append(correct / max(seen, 1))
        history["test_acc"].append(test_acc)
        print(f"epoch {epoch}: loss {history['train_loss'][-1]:.3f}, train acc {history['train_acc'][-1]:.3f}, "
              f"test acc {test_acc:.3f}", flush=True)
        if epoch == 1 and num_epochs > 1:
            took = time.perf_counter() - start
            rest = "the other epoch takes" if num_epochs == 2 else f"the other {num_epochs - 1} epochs take"
            print(f"(epoch 1 took {took:.0f} s: {rest} about {took * (num_epochs - 1) / 60:.1f} min more)", flush=True)
    history["seconds"] = train_seconds
    history["examples_per_sec"] = examples / train_seconds if train_seconds else 0.0
    print(f"loss {history['train_loss'][-1]:.3f}, train acc {history['train_acc'][-1]:.3f}, "
          f"test acc {history['test_acc'][-1]:.3f}" if num_epochs else "no epochs run")
    print(f"{history['examples_per_sec']:.1f} examples/sec on {device}")
    history["figure"] = plot_history(history)
    return history


def plot_history(history):
    """Loss and accuracies per epoch, as d2l plots them; a text table when matplotlib is missing."""
    try:
        import matplotlib
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("(install matplotlib to see the plot)\nepoch  train loss  train acc  test acc")
        for row in zip(history["epoch"], history["train_loss"], history["train_acc"], history["test_acc"]):
            print(f"{row[0]:>5}  {row[1]:>10.3f}  {row[2]:>9.3f}  {row[3]:>8.3f}")
        return None
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(history["epoch"], history["train_loss"], "-", label="train loss")
    ax.plot(history["epoch"], history["train_acc"], "m--", label="train acc")
    ax.plot(history["epoch"], history["test_acc"], "g-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlim(1, max(history["epoch"][-1] if history["epoch"] else 1, 2))
    ax.grid(True)
    ax.legend()
    fig.tight_layout()
    backend = matplotlib.get_backend().lower()
    if "inline" in backend or backend in ("macosx", "qtagg", "tkagg", "gtk3agg", "wxagg", "nbagg", "webagg"):
        plt.show()
    return fig

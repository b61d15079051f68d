"""Data for the training check and the notebooks: torchvision's real loader on an IDX fixture, the offline set.

The fixture is a few hundred random images written in the IDX format, in the
``FashionMNIST/raw`` layout torchvision expects, so torchvision's own reader
runs offline (download=False). The synthetic set must be deterministic and the
same for the grader and ``train_utils``.
"""
import gzip
import importlib.util
import os
import struct
import subprocess
import sys

import pytest
import torch

from autograder.reference import data
from autograder.student_side import synthetic_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_UTILS = os.path.join(ROOT, "solutions", "bn_resnet_densenet", "train_utils.py")


# ---- the IDX fixture ----------------------------------------------------------------------

def idx_bytes(t):
    """IDX (big-endian) encoding of a uint8 tensor: magic 0x0000 08 ndim, then the dims, then the bytes."""
    header = bytes([0, 0, 0x08, t.dim()]) + b"".join(struct.pack(">I", d) for d in t.shape)
    return header + t.contiguous().numpy().tobytes()


def fixture_arrays(n_train=300, n_test=100, seed=7):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n_train, 28, 28), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (n_train,), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (n_test, 28, 28), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (n_test,), generator=g, dtype=torch.uint8))


def write_fashion_fixture(root, gz=False, **sizes):
    arrays = fixture_arrays(**sizes)
    raw = os.path.join(str(root), "FashionMNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for name, t in zip(data.IDX_FILES, arrays):
        payload = idx_bytes(t)
        if gz:
            with gzip.open(os.path.join(raw, name + ".gz"), "wb") as f:
                f.write(payload)
        else:
            with open(os.path.join(raw, name), "wb") as f:
                f.write(payload)
    return arrays


@pytest.fixture()
def no_env(monkeypatch):
    for key in (data.ROOT_ENV, data.DOWNLOAD_ENV):
        monkeypatch.delenv(key, raising=False)


def test_torchvision_reads_the_idx_fixture(tmp_path, no_env):
    train_x, train_y, test_x, test_y = write_fashion_fixture(tmp_path)
    ds = data.load(200, 50, root=str(tmp_path))
    assert ds.name == data.FASHION
    assert "Fashion-MNIST" in ds.description and "torchvision" in ds.description
    assert torch.equal(ds.train_x, train_x[:200]) and torch.equal(ds.test_x, test_x[:50])
    assert ds.train_y.dtype == torch.int64 and torch.equal(ds.train_y, train_y[:200].long())
    assert torch.equal(ds.test_y, test_y[:50].long())


def test_gzipped_files_are_unpacked_and_read(tmp_path, no_env):
    train_x, _, _, test_y = write_fashion_fixture(tmp_path, gz=True)
    assert data.fashion_mnist_present(str(tmp_path))
    ds = data.load(300, 100, root=str(tmp_path))
    assert ds.name == data.FASHION
    assert torch.equal(ds.train_x, train_x) and torch.equal(ds.test_y, test_y.long())


def test_data_root_comes_from_the_environment(tmp_path, monkeypatch):
    write_fashion_fixture(tmp_path)
    monkeypatch.setenv(data.ROOT_ENV, str(tmp_path))
    monkeypatch.delenv(data.DOWNLOAD_ENV, raising=False)
    assert data.data_root() == str(tmp_path)
    assert data.load(100, 20).name == data.FASHION


def test_without_the_files_the_offline_set_is_used_and_named(tmp_path, no_env):
    first = data.load(1500, 300, root=str(tmp_path / "empty"))
    again = data.load(1500, 300, root=str(tmp_path / "empty"))
    assert first.name == synthetic_data.NAME and "synthetic" in first.description
    for a, b in ((first.train_x, again.train_x), (first.train_y, again.train_y),
                 (first.test_x, again.test_x), (first.test_y, again.test_y)):
        assert torch.equal(a, b)
    assert first.train_x.shape == (1500, 28, 28) and first.train_x.dtype == torch.uint8
    assert first.test_y.shape == (300,) and first.test_y.dtype == torch.int64


def test_too_few_images_or_a_broken_file_falls_back_and_says_why(tmp_path, no_env):
    write_fashion_fixture(tmp_path / "small")
    small = data.load(1000, 50, root=str(tmp_path / "small"))
    assert small.name == synthetic_data.NAME and "only 300 training" in small.description
    write_fashion_fixture(tmp_path / "broken")
    with open(os.path.join(str(tmp_path / "broken"), "FashionMNIST", "raw", "t10k-images-idx3-ubyte"), "wb") as f:
        f.write(b"\x00\x00\x08")
    broken = data.load(100, 50, root=str(tmp_path / "broken"))
    assert broken.name == synthetic_data.NAME and "could not be read" in broken.description


def test_offline_grading_never_imports_torchvision(tmp_path):
    """The usual grading path (no Fashion-MNIST on disk) must not pay for `import torchvision`."""
    code = ("import sys; from autograder.reference import data; d = data.load(100, 50); "
            "print(d.name, 'torchvision' in sys.modules)")
    env = dict(os.environ, BNLAB_DATA=str(tmp_path), BNLAB_DOWNLOAD="0")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [synthetic_data.NAME, "False"]


# ---- the synthetic set ------------------------------------------------------------------

def test_synthetic_set_is_deterministic_prefix_stable_and_balanced():
    x1, y1 = synthetic_data.make(2500, synthetic_data.TRAIN_SEED)
    x2, y2 = synthetic_data.make(1200, synthetic_data.TRAIN_SEED)
    assert torch.equal(x1[:1200], x2) and torch.equal(y1[:1200], y2)
    assert x1.dtype == torch.uint8 and x1.shape == (2500, 28, 28) and y1.dtype == torch.int64
    assert torch.bincount(y1[:2000], minlength=10).tolist() == [200] * 10      # balanced in each chunk
    x3, _ = synthetic_data.make(1200, synthetic_data.TEST_SEED)
    assert not torch.equal(x2, x3)                                               # the test split differs
    # labels come from randperm alone, so they are exact everywhere; the images' ink is stable to rounding
    assert y1[:12].tolist() == synthetic_data.make(12, synthetic_data.TRAIN_SEED)[1].tolist()
    assert 30 < x1.float().mean().item() < 70


def test_a_linear_probe_cannot_tell_classes_from_the_mean_intensity():
    """Not trivially easy: the mean brightness alone does not give the class away."""
    x, y = synthetic_data.make(2000, synthetic_data.TRAIN_SEED)
    means = x.float().mean(dim=(1, 2))
    by_class = torch.stack([means[y == c].mean() for c in range(10)])
    spread = means.std()
    # classes overlap: the class means lie within about one standard deviation of each other
    assert (by_class.max() - by_class.min()) < 2.5 * spread


# ---- train_utils (the notebooks' helpers) ---------------------------------------------------

def load_train_utils():
    spec = importlib.util.spec_from_file_location("train_utils_under_test", TRAIN_UTILS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_utils_uses_the_graders_generator():
    tu = load_train_utils()
    theirs = tu.synthetic_data_module()
    x, y = theirs.make(300, theirs.TEST_SEED)
    ours_x, ours_y = synthetic_data.make(300, synthetic_data.TEST_SEED)
    assert torch.equal(x, ours_x) and torch.equal(y, ours_y), \
        f"{theirs.__file__} differs from autograder/student_side/synthetic_data.py: rebuild the release"


def test_train_utils_loads_fashion_mnist_through_torchvision(tmp_path, no_env, capsys):
    train_x, train_y, test_x, test_y = write_fashion_fixture(tmp_path)
    tu = load_train_utils()
    train_iter, test_iter = tu.load_fashion_mnist(batch_size=32, root=str(tmp_path))
    assert "Fashion-MNIST from" in capsys.readouterr().out
    X, y = next(iter(test_iter))
    assert X.shape == (32, 1, 28, 28) and X.dtype == torch.float32
    assert torch.allclose(X[:, 0], test_x[:32].float() / 255) and torch.equal(y, test_y[:32].long())
    assert sum(len(b[1]) for b in train_iter) == 300
    _, test_iter = tu.load_fashion_mnist(batch_size=16, resize=32, root=str(tmp_path))
    assert next(iter(test_iter))[0].shape == (16, 1, 32, 32)


def test_train_utils_falls_back_to_the_offline_set(tmp_path, monkeypatch, capsys):
    tu = load_train_utils()
    monkeypatch.setattr(tu, "SYNTHETIC_SIZES", (512, 256))
    monkeypatch.setenv(tu.DOWNLOAD_ENV, "0")
    train_iter, test_iter = tu.load_fashion_mnist(batch_size=64, root=str(tmp_path / "nothing"))
    out = capsys.readouterr().out
    assert "not available" in out and "offline data set" in out and "synthetic shapes" in out
    X, y = next(iter(test_iter))
    x_ref, y_ref = synthetic_data.make(64, synthetic_data.TEST_SEED)
    assert torch.equal(y, y_ref) and torch.allclose(X[:, 0], x_ref.float() / 255)
    assert len(train_iter.dataset) == 512


def tiny_loaders():
    x, y = synthetic_data.make(256, synthetic_data.TRAIN_SEED)
    ds = torch.utils.data.TensorDataset(x.float().div(255).unsqueeze(1), y)
    return torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True), torch.utils.data.DataLoader(ds, batch_size=128)


def test_train_net_returns_history_shows_progress_and_plots(capsys):
    tu = load_train_utils()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    train_iter, test_iter = tiny_loaders()
    history = tu.train_net(net, train_iter, test_iter, num_epochs=2, lr=0.1, device="cpu")
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "examples/sec on cpu" in out
    assert history["epoch"] == [1, 2] and len(history["train_loss"]) == len(history["test_acc"]) == 2
    assert all(0.0 <= a <= 1.0 for a in history["train_acc"] + history["test_acc"])
    assert history["device"] == "cpu" and history["examples_per_sec"] > 0
    if importlib.util.find_spec("matplotlib") is not None:
        assert history["figure"] is not None and len(history["figure"].axes[0].lines) == 3


def test_train_net_without_tqdm_or_matplotlib(monkeypatch, capsys):
    tu = load_train_utils()
    for name in ("tqdm", "tqdm.auto", "matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)       # makes `import name` raise ImportError
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    train_iter, test_iter = tiny_loaders()
    history = tu.train_net(net, train_iter, test_iter, num_epochs=1, lr=0.1, device="cpu")
    out = capsys.readouterr().out
    assert "[" + "#" * 30 + "] 4/4" in out                  # the text bar reached the end
    assert "install matplotlib" in out and "train loss" in out
    assert history["figure"] is None

"""Training probe: LeNet-BN built with the student's ``BatchNorm``, trained on batches the grader sent.

Runs where the student's code runs and returns plain data only; the grader
(``autograder/checks/training.py``) judges it. The network is d2l's LeNet with
batch normalisation (seed 000)::

    Conv2d(1, 6, 5)  → BN(6, 4)   → Sigmoid → AvgPool2d(2, 2)
    Conv2d(6, 16, 5) → BN(16, 4)  → Sigmoid → AvgPool2d(2, 2) → Flatten
    Linear(256, 120) → BN(120, 2) → Sigmoid
    Linear(120, 84)  → BN(84, 2)  → Sigmoid → Linear(84, 10)

Average pooling, not seed 002's max pooling: max pooling picks one input of
each window, so two correct batch norms that differ in the last bit of a
float can pick different inputs and their loss curves part by 1e-4 within
twenty steps; with average pooling they stay within 1e-6, and the loss can
be compared tightly.

Training is plain SGD on ``CrossEntropyLoss`` over images ``x / 255``, one
batch per step in the order the grader chose. The same function trains the
grader's reference network (``BatchNorm`` = PyTorch's own layers), so both
runs share every line but the batch-norm layer. On the CPU it runs on one
thread (as the sandboxed worker does), so every door gets the same numbers;
on CUDA with TF32 off, for the same reason.
"""
import contextlib
import os
import time
import warnings

import torch
from torch import nn

from .loader import describe_error
from .base import ProbeError, plain_tensors
from .synthetic_data import single_thread
from .wire import to_plain

WEIGHTED = (0, 4, 9, 12, 15)    # the Conv2d / Linear layers of ``lenet_bn``, in order
NORMS = ((1, 6, 4), (5, 16, 4), (10, 120, 2), (13, 84, 2))   # (index, num_features, num_dims) of the batch norms
EVAL_BATCH = 64                 # the eval() checks use test images [0, 64) ...
MIX_ROW = 17                    # ... and image 0 again as row 17 of a batch of images [64, 128)
ACCURACY_BATCH = 500
NO_GPU = "the process running your code sees no GPU"


def lenet_bn(batch_norm_layer):
    """d2l's LeNet-BN with ``batch_norm_layer(num_features, num_dims)`` as its batch norm."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), batch_norm_layer(6, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), batch_norm_layer(16, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), batch_norm_layer(120, 2), nn.Sigmoid(),
        nn.Linear(120, 84), batch_norm_layer(84, 2), nn.Sigmoid(),
        nn.Linear(84, 10))


def build(batch_norm_layer, init):
    """LeNet-BN whose conv/linear weights and biases are ``init`` (10 tensors, in layer order)."""
    def layer(num_features, num_dims):
        obj = batch_norm_layer(num_features, num_dims)
        if not isinstance(obj, nn.Module):
            raise ProbeError(f"`BatchNorm({num_features}, {num_dims})` gave a {type(obj).__name__}, "
                             f"expected an nn.Module")
        return obj

    net = lenet_bn(layer)
    tensors = list(init)
    with torch.no_grad():
        for k, i in enumerate(WEIGHTED):
            net[i].weight.copy_(tensors[2 * k])
            net[i].bias.copy_(tensors[2 * k + 1])
    return net


def resolve_device(device):
    """The torch.device to train on; a clear error when CUDA is asked for but absent here."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ProbeError(f"the grader asked to train on CUDA, but {NO_GPU} (torch.cuda.is_available() is False "
                         f"there); tell your instructor")
    return torch.empty(0, device=dev).device      # "cuda" -> "cuda:0"


def images(x, device):
    """uint8 images (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1] on ``device``."""
    return x.to(device).float().div_(255.0).unsqueeze(1)


# ---- what lives in the network --------------------------------------------

def module_tensors(net):
    """(name, tensor, kind) for every parameter, buffer and plain tensor attribute of every submodule."""
    found = []
    for prefix, sub in net.named_modules():
        first, _, rest = prefix.partition(".")
        where = f"net[{first}]." + (f"{rest}." if rest else "") if prefix else "net."
        found += [(where + n, p, "parameter") for n, p in sub.named_parameters(recurse=False)]
        found += [(where + n, b, "buffer") for n, b in sub.named_buffers(recurse=False) if b is not None]
        found += [(where + n, v, "attribute") for n, v in plain_tensors(sub, private=True)]
    return found


def statistics(net):
    """(name, tensor) of what is not a parameter: the moving statistics, however they are stored."""
    return [(n, t) for n, t, kind in module_tensors(net) if kind != "parameter"]


def count_nodes(tensors, cap=100_000):
    """Autograd nodes reachable from the tensors' ``grad_fn`` (0 when none has history)."""
    seen = {}
    stack = [t.grad_fn for t in tensors if t.grad_fn is not None]
    while stack and len(seen) < cap:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = fn           # keep it alive so that its id is not reused
        stack.extend(f for f, _ in getattr(fn, "next_functions", ()))
    return len(seen)


def graph_record(net, step):
    stats = statistics(net)
    return {"step": step,
            "with_history": [n for n, t in stats if t.grad_fn is not None],
            "nodes": count_nodes([t for _, t in stats])}


# ---- the run -----------------------------------------------------------------

def sgd_step(params, lr):
    """p <- p - lr * grad, as d2l's ``sgd`` (torch.optim's first step costs seconds of imports)."""
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)


def train_steps(net, train_x, train_y, order, lr, device, graph_steps=(), on_first_step=None):
    """SGD over the batches ``order`` (steps, batch) of (train_x, train_y); returns the run's records."""
    X, Y = train_x.to(device), train_y.to(device)
    params = list(net.parameters())
    loss_fn = nn.CrossEntropyLoss()
    cuda = device.type == "cuda"
    losses, graph, memory = [], [], []
    net.train()
    for step, idx in enumerate(order.to(device), start=1):
        loss = loss_fn(net(X[idx].float().div_(255.0).unsqueeze(1)), Y[idx])
        for p in params:
            p.grad = None
        loss.backward()
        sgd_step(params, lr)
        losses.append(loss.detach())
        del loss
        if step == 1 and on_first_step is not None:
            on_first_step()
        if step in graph_steps:
            graph.append(graph_record(net, step))
        if cuda:
            memory.append(int(torch.cuda.memory_allocated(device)))
    return {"losses": torch.stack(losses).double().cpu().tolist() if losses else [], "graph": graph,
            "cuda_memory": memory}


def eval_outputs(net, test_x, device):
    """eval() outputs for the determinism checks (with autograd on, as a student would call it)."""
    net.eval()
    batch = images(test_x[:EVAL_BATCH], device)
    mixed = images(test_x[EVAL_BATCH:2 * EVAL_BATCH], device).clone()
    mixed[MIX_ROW] = batch[0]
    first = net(batch)
    again = net(batch)
    with torch.no_grad():
        no_grad = net(batch)
    return {"first": to_plain(first), "again": to_plain(again), "no_grad": to_plain(no_grad),
            "mixed": to_plain(net(mixed)), "alone": to_plain(net(batch[:1]))}


def accuracy(net, test_x, test_y, device):
    """Correct predictions in eval() mode (the GRADER's count: it runs this on its own network built from
    the state the training probe returns, ``training_ref.judge_network``)."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test_y), ACCURACY_BATCH):
            out = net(images(test_x[start:start + ACCURACY_BATCH], device))
            correct += int((out.argmax(dim=1).cpu() == test_y[start:start + ACCURACY_BATCH]).sum())
    return correct


def trained_state(net):
    """What the grader needs to evaluate the trained network itself: the conv/linear weights and biases
    (10 tensors, in layer order) and, per batch norm, every tensor of as many elements as it has features
    ([name, kind, tensor]; kind: parameter / buffer / attribute, however the student stores them) and
    its ``eps`` if it keeps one."""
    found = module_tensors(net)
    norms = []
    for index, features, _ in NORMS:
        prefix = f"net[{index}]."
        tensors = [[name[len(prefix):], kind, to_plain(t)] for name, t, kind in found
                   if name.startswith(prefix) and t.is_floating_point() and t.numel() == features]
        eps = [v for sub in net[index].modules() for k, v in vars(sub).items()
               if k == "eps" and type(v) is float]
        norms.append({"tensors": tensors, "eps": eps[0] if eps else None})
    weights = [to_plain(t) for i in WEIGHTED for t in (net[i].weight, net[i].bias)]
    return {"weights": weights, "norms": norms}


@contextlib.contextmanager
def cuda_settings(device):
    """On CUDA: full float32 convolutions and matmuls (no TF32 rounding, which would make two correct
    layers drift apart), and no warnings that pooling backward or cuBLAS are not deterministic (not the
    student's doing). Everything is put back afterwards."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*determinis.*")
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def train(names, init, train_x, train_y, order, test_x, test_y, lr, device="cpu", graph_steps=(),
          evaluate=True):
    """Train LeNet-BN built with ``names["BatchNorm"]``; returns plain data for the judges.

    init: 10 tensors, the conv/linear weights and biases; train_x/test_x: uint8 (N, 28, 28);
    order: int64 (steps, batch) indices into train_x. ``devices`` is read after the first step,
    ``graph`` after each step in ``graph_steps``. An error in eval() mode is reported in
    ``eval_error`` so that the training-mode checks are still graded. ``state`` is the trained network
    (``trained_state``): the grader computes the test accuracy and checks the eval() outputs from it.
    """
    if "BatchNorm" not in names:
        raise ProbeError("`BatchNorm` is not defined in your submission")
    dev = resolve_device(device)
    result = {"device": str(dev), "devices": {}, "eval": None, "eval_error": None, "state": None,
              "total": int(len(test_y))}
    # one CPU thread, as in the sandboxed worker: the same numbers through every door, and no
    # OpenMP threads waiting on each other on a busy machine
    with cuda_settings(dev), (single_thread() if dev.type == "cpu" else contextlib.nullcontext()):
        net = build(names["BatchNorm"], init).to(dev)

        def record_devices():
            result["devices"] = {n: str(t.device) for n, t, _ in module_tensors(net)}

        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        result.update(train_steps(net, train_x, train_y, order, lr, dev, tuple(graph_steps), record_devices))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        result["train_seconds"] = time.perf_counter() - start
        if evaluate:
            try:
                result["eval"] = eval_outputs(net, test_x, dev)
                result["state"] = trained_state(net)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                result["eval_error"] = describe_error(exc, "your code")
    return result

"""The grader's side of the training check: device, plan (data, weights, batches) and the reference run.

The reference batch norm is PyTorch's own ``nn.BatchNorm2d`` / ``nn.BatchNorm1d``
with ``momentum=0.1``, which is d2l's ``momentum=0.9`` (PyTorch's momentum is the
weight of the NEW batch). In training mode both normalise with the batch mean
and the biased batch variance::

    y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta,     eps = 1e-5

so the training losses of a correct from-scratch layer equal the reference's
to float rounding. (PyTorch's ``running_var`` is the unbiased estimate, d2l's
moving variance the biased one; that touches eval() only, which the reference
run never uses.) Using PyTorch's layer keeps the from-scratch answer out of
this file, which ships to students with the public checks.

The budget is per device: CUDA trains two epochs of 60,000 images, the CPU one
pass over 5,120 (80 steps of 64), so the check always runs and stays within a probe's time.
"""
import dataclasses
import functools

import torch
from torch import nn

from .. import course
from . import data
from ..student_side import synthetic_data, train_probe

DEVICE_ENV = course.SETTINGS["device"].env
DEVICE_CHOICES = course.SETTINGS["device"].choices
INIT_SEED = 0           # the initial conv/linear weights: PyTorch's default init under this seed
ORDER_SEED = 1          # the batch order

LOSS_STEPS = 20                      # loss_matches_reference compares the first 20 steps ...
LOSS_ATOL, LOSS_RTOL = 1e-3, 1e-3    # ... within 1e-3 + 1e-3·|reference loss| each
# Correct layers differ from the reference by < 1e-6 here (float rounding); using the unbiased
# variance to normalise, or gamma/beta that do not train, moves the loss by 1e-3 to 1e-1.

ACCURACY_THRESHOLD = {                 # test accuracy in eval() mode after the run; untrained: 10%
    data.synthetic_data.NAME: 0.60,    # a correct layer reaches ~86% on the CPU budget
    data.FASHION: 0.50,
}
EVAL_ATOL, EVAL_RTOL = 1e-4, 1e-4    # eval() outputs: same batch twice, other batch, batch of one
CUDA_GROWTH_BYTES = 1 << 20          # GPU memory in use may not grow more than this from step 2 to the end


@dataclasses.dataclass(frozen=True)
class Budget:
    batch_size: int
    epochs: int
    n_train: int
    n_test: int
    lr: float

    @property
    def steps(self):
        return self.epochs * (self.n_train // self.batch_size)


BUDGETS = {
    "cpu": Budget(batch_size=64, epochs=1, n_train=5120, n_test=2000, lr=1.0),
    "cuda": Budget(batch_size=256, epochs=2, n_train=60000, n_test=10000, lr=1.0),
}


class DeviceError(Exception):
    """The requested training device cannot be used here; the message says what to do."""


def requested_device(requested=None):
    """What was asked for: ``requested``, else ``$BNLAB_DEVICE``, else 'auto' (``course.setting``)."""
    try:
        return course.setting("device", requested)
    except course.SettingError as exc:
        raise DeviceError(f"unknown training device: {exc}") from None


def choose_device(requested=None):
    """'cpu' or 'cuda' for the training check.

    ``requested`` (or ``$BNLAB_DEVICE``; ``python -m autograder grade --device`` sets it) is
    'auto' (the default: CUDA when PyTorch sees a GPU), 'cpu' or 'cuda'. 'cuda' without a GPU
    raises DeviceError instead of quietly training on the CPU.
    """
    choice = requested_device(requested)
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(f"--device cuda was asked for, but PyTorch sees no CUDA GPU on this machine "
                          f"(torch.cuda.is_available() is False; torch {torch.__version__} is {build}). "
                          f"Use --device cpu, or --device auto to use a GPU only when there is one.")
    return choice


def torch_batch_norm(num_features, num_dims):
    """The reference layer: PyTorch's batch norm, configured like the exercise's ``BatchNorm``."""
    layer = nn.BatchNorm2d if num_dims == 4 else nn.BatchNorm1d
    return layer(num_features, eps=1e-5, momentum=0.1)


def initial_weights(seed=INIT_SEED):
    """The conv/linear weights and biases every run starts from (10 tensors, CPU)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = train_probe.lenet_bn(torch_batch_norm)
    return [t.detach().clone() for i in train_probe.WEIGHTED for t in (net[i].weight, net[i].bias)]


def batch_order(n_train, batch_size, epochs, seed=ORDER_SEED):
    """(steps, batch_size) indices: a fresh shuffle each epoch, the last partial batch dropped."""
    g = torch.Generator().manual_seed(seed)
    per_epoch = n_train // batch_size
    rows = [torch.randperm(n_train, generator=g)[:per_epoch * batch_size].view(per_epoch, batch_size)
            for _ in range(epochs)]
    return torch.cat(rows)


@dataclasses.dataclass(frozen=True)
class Plan:
    device: str
    budget: Budget
    dataset: str          # data.FASHION or the synthetic set's name
    description: str      # which data, for the report
    kwargs: dict          # the training probe's arguments

    @property
    def threshold(self):
        return ACCURACY_THRESHOLD[self.dataset]

    @property
    def graph_steps(self):
        return self.kwargs["graph_steps"]


@functools.lru_cache(maxsize=2)
def plan(device):
    """Data, initial weights and batch order for training on ``device`` (computed once per process)."""
    budget = BUDGETS[device]
    ds = data.load(budget.n_train, budget.n_test)
    steps = budget.steps
    kwargs = dict(init=initial_weights(), train_x=ds.train_x, train_y=ds.train_y,
                  order=batch_order(budget.n_train, budget.batch_size, budget.epochs),
                  test_x=ds.test_x, test_y=ds.test_y, lr=budget.lr, device=device,
                  graph_steps=sorted({1, 2, 5, 10, steps // 2, steps} & set(range(1, steps + 1))))
    return Plan(device, budget, ds.name, ds.description, kwargs)


def reference_run(the_plan, batch_norm_layer=torch_batch_norm, steps=LOSS_STEPS, evaluate=False):
    """The training probe, run here with ``batch_norm_layer`` for the first ``steps`` batches."""
    kwargs = dict(the_plan.kwargs, order=the_plan.kwargs["order"][:steps], evaluate=evaluate)
    with torch.random.fork_rng(devices=[]), synthetic_data.single_thread():
        return train_probe.train({"BatchNorm": batch_norm_layer}, **kwargs)


@functools.lru_cache(maxsize=2)
def reference_losses(device):
    """The reference network's losses over the first LOSS_STEPS batches of ``plan(device)``."""
    return reference_run(plan(device))["losses"]


# ---- the judge's own evaluation of the trained network --------------------------------------------------

GAMMA_NAMES = ("gamma", "weight", "scale")
BETA_NAMES = ("beta", "bias", "shift")
MEAN_NAMES = ("mean", "mu", "avg", "average")
VAR_NAMES = ("var", "sigma", "variance")
DEFAULT_EPS = 1e-5
JUDGE_EVAL_ATOL, JUDGE_EVAL_RTOL = 1e-3, 1e-3   # the student's eval() logits vs the judge's, from the same state


class StateError(Exception):
    """The trained state the training probe returned cannot be evaluated; the message says why."""


def _pick(entries, names):
    for e in entries:
        leaf = e[0].rsplit(".", 1)[-1].lower()
        if any(n in leaf for n in names):
            return e
    return None


def identify(tensors, features, where):
    """(gamma, beta, moving_mean, moving_var) among a batch norm's tensors ``[(name, kind, learnable,
    tensor)]`` of ``features`` elements: learnable ones (leaves requiring grad; failing two of those and two
    others, every parameter) by name
    (gamma/weight/scale, beta/bias/shift), else in the order the layer defines them; the statistics by
    name (mean/mu, var/sigma), else in order (d2l defines the mean first)."""
    learn = [e for e in tensors if e[2]]
    stats = [e for e in tensors if not e[2]]
    if len(learn) < 2 or len(stats) < 2:   # moving statistics as frozen nn.Parameters are statistics (above)
        learn = [e for e in tensors if e[1] == "parameter" or e[2]]
        stats = [e for e in tensors if not (e[1] == "parameter" or e[2])]
    found = []
    for group, first_names, second_names in ((learn, GAMMA_NAMES, BETA_NAMES), (stats, MEAN_NAMES, VAR_NAMES)):
        a, b = _pick(group, first_names), _pick(group, second_names)
        rest = [e for e in group if e is not a and e is not b]
        a = a or (rest.pop(0) if rest else None)
        b = b or (rest.pop(0) if rest else None)
        found += [a, b]
    if any(e is None for e in found):
        names = ", ".join(f"{e[0]} ({e[1]})" for e in tensors) or "none"
        raise StateError(f"{where}: expected gamma and beta (learnable) and the moving mean and variance, each of "
                         f"{features} values; found {names}")
    return [e[3].detach().reshape(features).double() for e in found]


def judge_network(weights, norms, dtype=torch.float64):
    """LeNet-BN of PyTorch's own layers holding the trained state: ``weights`` (10 tensors, the conv/linear
    weights and biases in layer order), ``norms`` (per batch norm: (tensors, eps) as ``identify`` takes
    them). PyTorch's eval() batch norm computes d2l's prediction formula
    ``gamma * (X - moving_mean) / sqrt(moving_var + eps) + beta`` from whatever the student stored
    (momentum plays no part in eval(), so d2l's and PyTorch's momentum conventions do not matter here)."""
    net = train_probe.lenet_bn(torch_batch_norm).to(dtype)
    with torch.no_grad():
        for k, i in enumerate(train_probe.WEIGHTED):
            for name, t in (("weight", weights[2 * k]), ("bias", weights[2 * k + 1])):
                target = getattr(net[i], name)
                if tuple(t.shape) != tuple(target.shape):
                    raise StateError(f"net[{i}].{name} came back with shape {tuple(t.shape)}, expected "
                                     f"{tuple(target.shape)}")
                target.copy_(t)
        for (index, features, _), (tensors, eps) in zip(train_probe.NORMS, norms):
            gamma, beta, mean, var = identify(tensors, features, f"the batch norm net[{index}]")
            layer = net[index]
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
            layer.eps = DEFAULT_EPS if eps is None else float(eps)
    return net.eval()


def judge_evaluation(the_plan, weights, norms):
    """(correct predictions on the plan's test set, in float32 as the student's network computes them;
    float64 eval() logits of test images [0, 64)), by the judge's network holding the trained state."""
    kwargs = the_plan.kwargs
    with torch.no_grad(), synthetic_data.single_thread():
        correct = train_probe.accuracy(judge_network(weights, norms, torch.float32), kwargs["test_x"],
                                       kwargs["test_y"], torch.device("cpu"))
        first = judge_network(weights, norms)(
            train_probe.images(kwargs["test_x"][:train_probe.EVAL_BATCH], "cpu").double())
    return correct, first

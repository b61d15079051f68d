"""The grader's own batch-norm arithmetic, in float64, written from the formulas.

Notation (as in PyTorch's ``batchnorm.py`` docstring and d2l 7.5). For an input
``X`` of shape (N, C) the statistics are taken over dim 0; for (N, C, H, W)
over dims (0, 2, 3), one value per channel, keeping dims::

    mean = E[X]                                   (per feature / channel)
    var  = E[(X - mean)^2]                        (biased: divide by m, not m - 1)
    X_hat = (X - mean) / sqrt(var + eps)          (eps inside the square root)
    Y = gamma * X_hat + beta

where m = N (2-D) or N*H*W (4-D). The moving statistics follow d2l's momentum
convention, which keeps ``momentum`` of the OLD value::

    moving = momentum * moving + (1 - momentum) * batch_statistic

(PyTorch's ``nn.BatchNorm`` calls the weight of the NEW batch "momentum", default
0.1, and stores the unbiased variance in ``running_var``; this exercise does not.)
In prediction mode, ``X_hat = (X - moving_mean) / sqrt(moving_var + eps)`` and the
moving statistics are returned unchanged.

Every function takes tensors of any float dtype and computes in float64. They are
plain arithmetic on purpose: the grader never trusts ``F.batch_norm`` for the
d2l convention it does not implement.
"""
import torch

from ..student_side.base import backward


def stat_dims(X):
    """The dims the statistics are taken over: (0,) for (N, C), (0, 2, 3) for (N, C, H, W)."""
    if X.dim() == 2:
        return (0,)
    if X.dim() == 4:
        return (0, 2, 3)
    raise ValueError(f"batch norm takes 2-D or 4-D input, not {X.dim()}-D")


def param_shape(num_features, num_dims):
    """Shape of gamma, beta and the moving statistics: (1, C) or (1, C, 1, 1)."""
    return (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)


def batch_stats(X):
    """(mean, biased var) per feature/channel, kept as (1, C) or (1, C, 1, 1)."""
    X = X.double()
    dims = stat_dims(X)
    mean = X.mean(dim=dims, keepdim=True)
    var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
    return mean, var


def normalise(X, gamma, beta, mean, var, eps):
    """gamma * (X - mean) / sqrt(var + eps) + beta, in float64."""
    X, gamma, beta, mean, var = (t.double() for t in (X, gamma, beta, mean, var))
    return gamma * (X - mean) / torch.sqrt(var + eps) + beta


def batch_norm_train(X, gamma, beta, eps):
    """Training mode: returns (Y, mean, var) with the batch's own biased statistics."""
    mean, var = batch_stats(X)
    return normalise(X, gamma, beta, mean, var, eps), mean, var


def batch_norm_predict(X, gamma, beta, moving_mean, moving_var, eps):
    """Prediction mode: normalise with the moving statistics; returns Y."""
    return normalise(X, gamma, beta, moving_mean, moving_var, eps)


def moving_update(moving, batch, momentum):
    """d2l: moving = momentum * moving + (1 - momentum) * batch."""
    return momentum * moving.double() + (1.0 - momentum) * batch.double()


def train_steps(batches, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Run training mode over several batches, carrying the moving statistics.

    Returns (list of Y, moving_mean, moving_var) after the last batch."""
    outputs = []
    moving_mean, moving_var = moving_mean.double(), moving_var.double()
    for X in batches:
        Y, mean, var = batch_norm_train(X, gamma, beta, eps)
        outputs.append(Y)
        moving_mean = moving_update(moving_mean, mean, momentum)
        moving_var = moving_update(moving_var, var, momentum)
    return outputs, moving_mean, moving_var


def train_grads(X, gamma, beta, eps, grad_output, detach_mean=False, detach_var=False):
    """Autograd in float64 through the batch statistics: (dX, dgamma, dbeta).

    The gradient w.r.t. X has three paths: through X directly, through the mean and
    through the variance. ``detach_mean`` / ``detach_var`` cut one of them; they
    exist only to recognise that mistake in a student's gradient."""
    X = X.double().detach().requires_grad_(True)
    gamma = gamma.double().detach().requires_grad_(True)
    beta = beta.double().detach().requires_grad_(True)
    mean, var = batch_stats(X)
    if detach_mean:
        mean = mean.detach()
    if detach_var:
        var = var.detach()
    Y = normalise(X, gamma, beta, mean, var, eps)
    backward(Y, grad_output.double())
    return X.grad, gamma.grad, beta.grad


# (the well-known WRONG formulas, for hints, live in autograder/reference/diagnosis.py)


# ---- inputs the checks feed to students' code ----

def sample(shape, seed, scale=None, shift=None):
    """A fixed float32 input: standard normal draws (torch.Generator seeded with ``seed``),
    times a per-channel ``scale`` plus a per-channel ``shift`` (channel = dim 1).
    float32 because that is what students' code receives in a real network."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(shape, generator=g, dtype=torch.float64)
    view = (1, shape[1]) + (1,) * (len(shape) - 2)
    if scale is not None:
        X = X * torch.tensor(scale, dtype=torch.float64).reshape(view)
    if shift is not None:
        X = X + torch.tensor(shift, dtype=torch.float64).reshape(view)
    return X.float()


def per_channel(values, num_dims):
    """A float32 (1, C) or (1, C, 1, 1) tensor holding ``values``."""
    return torch.tensor(values, dtype=torch.float32).reshape(param_shape(len(values), num_dims))

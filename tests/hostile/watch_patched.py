"""Hostile (placed after the reference): batch_norm delegates to F.batch_norm, and at import the
submission switches the forbidden-op watch off: it replaces the dispatch method of the grader's watch
class (if it can find one) and makes entering any dispatch mode a no-op.
Expected: batch_norm.from_scratch and BatchNorm.from_scratch score zero, and the submission is FLAGGED."""
import sys

import torch
from torch.nn import functional as F
from torch.utils import _python_dispatch


def _passthrough(self, func, types, args=(), kwargs=None):
    return func(*args, **(kwargs or {}))


for _module in list(sys.modules.values()):
    for _value in list(getattr(_module, "__dict__", {}).values()):
        if isinstance(_value, type) and issubclass(_value, _python_dispatch.TorchDispatchMode):
            _value.__torch_dispatch__ = _passthrough
_python_dispatch.TorchDispatchMode.__enter__ = lambda self: self
_python_dispatch.TorchDispatchMode.__exit__ = lambda self, *exc: None


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    C = X.shape[1]
    shape = (1, C) if X.dim() == 2 else (1, C, 1, 1)
    mm, mv = moving_mean.reshape(C).clone(), moving_var.reshape(C).clone()
    Y = F.batch_norm(X, mm, mv, gamma.reshape(C), beta.reshape(C), is_training, 1.0 - momentum, eps)
    if is_training:   # PyTorch keeps the unbiased variance: recompute d2l's biased update by hand
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        var, mean = torch.var_mean(X.detach(), dim=dims, correction=0)
        mm = momentum * moving_mean.reshape(C) + (1 - momentum) * mean
        mv = momentum * moving_var.reshape(C) + (1 - momentum) * var
    return Y, mm.reshape(shape), mv.reshape(shape)

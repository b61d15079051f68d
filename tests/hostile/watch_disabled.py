"""Hostile (placed after the reference): batch_norm delegates to F.batch_norm inside PyTorch's own
"disable the current modes" context manager, so that no dispatch mode sees the kernel.
Expected: batch_norm.from_scratch and BatchNorm.from_scratch score zero (the watch sees an output it did not
see computed), and the submission is FLAGGED."""
import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import _disable_current_modes


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    C = X.shape[1]
    shape = (1, C) if X.dim() == 2 else (1, C, 1, 1)
    with _disable_current_modes():
        Y = F.batch_norm(X, None if is_training else moving_mean.reshape(C),
                         None if is_training else moving_var.reshape(C),
                         gamma.reshape(C), beta.reshape(C), is_training, 0.0, eps)
        if is_training:
            dims = (0,) if X.dim() == 2 else (0, 2, 3)
            var, mean = torch.var_mean(X.detach(), dim=dims, correction=0)
            moving_mean = momentum * moving_mean + (1 - momentum) * mean.reshape(shape)
            moving_var = momentum * moving_var + (1 - momentum) * var.reshape(shape)
    return Y, moving_mean, moving_var

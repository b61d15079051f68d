"""Hostile (placed after the reference): batch_norm delegates to F.batch_norm while dispatch to Python is off
(torch._C._DisableTorchDispatch), reached through ALIASES of the imported modules and computed attribute names
(no flagged name in the source), and multiplies the result by 1.0 under the watch so that the output the
watch checks was "seen computed". Found by tests/break: before the scan knew aliases, this got both
from_scratch points unflagged.
Expected: FLAGGED (computed getattr on an alias of an imported module); both from_scratch checks score zero."""
import torch
from torch.nn import functional as F

_m = torch
_inner = getattr(_m, "_" + "C")
_off = getattr(_inner, "_DisableTorch" + "Dispatch")
_f = F
_kernel = getattr(_f, "batch_" + "norm")


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    C = X.shape[1]
    if not is_training:
        with _off():
            Y = _kernel(X, moving_mean.reshape(C), moving_var.reshape(C), gamma.reshape(C), beta.reshape(C),
                        False, 0.0, eps)
        return Y * 1.0, moving_mean, moving_var
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    mean = X.mean(dim=dims, keepdim=True)
    var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
    with _off():
        Y = _kernel(X, None, None, gamma.reshape(C), beta.reshape(C), True, 0.0, eps)
    shape = moving_mean.shape
    moving_mean = momentum * moving_mean + (1.0 - momentum) * mean.detach().reshape(shape)
    moving_var = momentum * moving_var + (1.0 - momentum) * var.detach().reshape(shape)
    return Y * 1.0, moving_mean, moving_var

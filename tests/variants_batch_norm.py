"""batch_norm: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "batch_norm"
TRAIN_2D_VAR = "var = ((X - mean) ** 2).mean(dim=0)"
TRAIN_4D = ("mean = X.mean(dim=(0, 2, 3), keepdim=True)\n"
            "            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)")
TRAIN_XHAT = "X_hat = (X - mean) / torch.sqrt(var + eps)"
UPDATE = ("moving_mean = momentum * moving_mean + (1.0 - momentum) * mean.detach()\n"
          "        moving_var = momentum * moving_var + (1.0 - momentum) * var.detach()")

WRONG = [
    Variant("batch_norm_unbiased_var", P, "unbiased variance (torch.var default) for normalising",
            replace=((TRAIN_2D_VAR, "var = X.var(dim=0)"),
                     ("var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)",
                      "var = X.var(dim=(0, 2, 3), keepdim=True)")), keyword='unbiased'),
    Variant("batch_norm_4d_stats_dim0_only", P, "4-D statistics over dim 0 only (per pixel, not per channel)",
            replace=((TRAIN_4D, "mean = X.mean(dim=0, keepdim=True)\n"
                                "            var = ((X - mean) ** 2).mean(dim=0, keepdim=True)"),), keyword='dim 0 only'),
    Variant("batch_norm_4d_stats_all_dims", P, "4-D statistics over the whole tensor",
            replace=((TRAIN_4D, "mean = X.mean()\n            var = ((X - mean) ** 2).mean()"),), keyword='whole tensor'),
    Variant("batch_norm_eps_outside_sqrt", P, "eps added outside the square root",
            replace=((TRAIN_XHAT, "X_hat = (X - mean) / (torch.sqrt(var) + eps)"),), keyword='outside the square root'),
    Variant("batch_norm_no_eps", P, "no eps at all: constant channel gives NaN",
            replace=((TRAIN_XHAT, "X_hat = (X - mean) / torch.sqrt(var)"),), keyword='eps is missing'),
    Variant("batch_norm_eps_hardcoded", P, "ignores the eps argument, uses 1e-5",
            replace=((TRAIN_XHAT, "X_hat = (X - mean) / torch.sqrt(var + 1e-5)"),), keyword='eps argument'),
    Variant("batch_norm_gamma_beta_swapped", P, "Y = beta * X_hat + gamma",
            replace=(("Y = gamma * X_hat + beta", "Y = beta * X_hat + gamma"),), keyword='swapped'),
    Variant("batch_norm_pytorch_momentum", P, "PyTorch convention: moving = (1 - m) * moving + m * batch",
            replace=((UPDATE, "moving_mean = (1.0 - momentum) * moving_mean + momentum * mean.detach()\n"
                              "        moving_var = (1.0 - momentum) * moving_var + momentum * var.detach()"),), keyword='OLD value'),
    Variant("batch_norm_moving_never_updated", P, "training returns the moving statistics unchanged",
            replace=((UPDATE, "pass"),), keyword='did not change'),
    Variant("batch_norm_momentum_hardcoded", P, "ignores the momentum argument (always 0.9)",
            replace=((UPDATE, UPDATE.replace("momentum", "0.9")),), keyword='momentum argument'),
    Variant("batch_norm_moving_var_unbiased", P, "moving variance from the unbiased variance (PyTorch's running_var)",
            replace=(("moving_var = momentum * moving_var + (1.0 - momentum) * var.detach()",
                      "n = X.numel() // var.numel()\n"
                      "        moving_var = momentum * moving_var + (1.0 - momentum) * var.detach() * n / (n - 1)"),), keyword='unbiased'),
    Variant("batch_norm_moving_not_detached", P, "moving statistics keep autograd history (d2l seed code)",
            replace=((UPDATE, UPDATE.replace(".detach()", "")),), keyword='autograd history'),
    Variant("batch_norm_mean_detached_in_norm", P, "batch mean detached before normalising: wrong input gradient",
            replace=((TRAIN_XHAT, "X_hat = (X - mean.detach()) / torch.sqrt(var + eps)"),), keyword='through the batch mean'),
    Variant("batch_norm_predict_uses_batch_stats", P, "prediction mode ignored: always batch statistics",
            replace=(("if not is_training:", "if False:"),), keyword='BATCH statistics'),
    Variant("batch_norm_grad_mode_switch", P, "switches on torch.is_grad_enabled() instead of is_training (d2l zh)",
            replace=(("if not is_training:", "if not torch.is_grad_enabled():"),), keyword='is_grad_enabled'),
    Variant("batch_norm_predict_updates_moving", P, "prediction also updates the moving statistics from the batch",
            replace=(("X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)",
                      "X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)\n"
                      "        dims = 0 if X.dim() == 2 else (0, 2, 3)\n"
                      "        moving_mean = momentum * moving_mean + (1.0 - momentum) * X.mean(dim=dims, keepdim=True)\n"
                      "        moving_var = momentum * moving_var + (1.0 - momentum) * X.var(dim=dims, unbiased=False, keepdim=True)"),), keyword='unchanged'),
    Variant("batch_norm_delegates_F", P, "delegates to F.batch_norm", append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    shape = moving_mean.shape
    running_mean, running_var = moving_mean.reshape(-1).clone(), moving_var.reshape(-1).clone()
    Y = F.batch_norm(X, running_mean, running_var, gamma.reshape(-1), beta.reshape(-1),
                     training=is_training, momentum=1.0 - momentum, eps=eps)
    return Y, running_mean.reshape(shape), running_var.reshape(shape)
''', keyword='F.batch_norm'),
    Variant("batch_norm_delegates_F_biased", P, "F.batch_norm for Y, moving statistics computed by hand (passes the maths)",
            append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    C = X.shape[1]
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    if not is_training:
        Y = F.batch_norm(X, moving_mean.reshape(C), moving_var.reshape(C), gamma.reshape(C), beta.reshape(C),
                         training=False, eps=eps)
        return Y, moving_mean, moving_var
    Y = F.batch_norm(X, None, None, gamma.reshape(C), beta.reshape(C), training=True, eps=eps)
    mean = X.detach().mean(dim=dims, keepdim=True)
    var = X.detach().var(dim=dims, unbiased=False, keepdim=True)
    return Y, momentum * moving_mean + (1 - momentum) * mean, momentum * moving_var + (1 - momentum) * var
''', keyword='F.batch_norm'),
    Variant("batch_norm_layer_norm_4d", P, "4-D case through F.layer_norm / per-sample statistics",
            replace=((TRAIN_4D, "mean = X.mean(dim=(1, 2, 3), keepdim=True)\n"
                                "            var = ((X - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)"),), keyword='per sample'),
    # ---- modelled on public code styles (issue 9) ----
    Variant("batch_norm_cs231n_reshape_no_transpose", P, "CS231n spatial batch norm, X.reshape(-1, C) without moving "
            "C last: every column mixes channels", append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if X.dim() == 4:
        N, C, H, W = X.shape
        out, mm, mv = batch_norm(is_training, X.reshape(-1, C), gamma.reshape(1, C), beta.reshape(1, C),
                                 moving_mean.reshape(1, C), moving_var.reshape(1, C), eps, momentum)
        return out.reshape(N, C, H, W), mm.reshape(moving_mean.shape), mv.reshape(moving_var.shape)
    if is_training:
        sample_mean = X.mean(dim=0)
        sample_var = X.var(dim=0, unbiased=False)
        x_hat = (X - sample_mean) / torch.sqrt(sample_var + eps)
        moving_mean = momentum * moving_mean + (1 - momentum) * sample_mean.detach()
        moving_var = momentum * moving_var + (1 - momentum) * sample_var.detach()
    else:
        x_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    return gamma * x_hat + beta, moving_mean, moving_var
''', keyword="mix channels"),
    Variant("batch_norm_function_backward_constants", P, "custom autograd.Function whose hand-written backward "
            "treats the batch mean and variance as constants", append='''
class BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, gamma, beta, eps):
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + eps)
        X_hat = (X - mean) * inv_std
        ctx.save_for_backward(X_hat, gamma, inv_std)
        ctx.dims = dims
        ctx.mark_non_differentiable(mean, var)
        return gamma * X_hat + beta, mean, var

    @staticmethod
    def backward(ctx, dY, dmean, dvar):
        X_hat, gamma, inv_std = ctx.saved_tensors
        dgamma = (dY * X_hat).sum(dim=ctx.dims, keepdim=True)
        dbeta = dY.sum(dim=ctx.dims, keepdim=True)
        return dY * gamma * inv_std, dgamma, dbeta, None


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if not is_training:
        return gamma * (X - moving_mean) / torch.sqrt(moving_var + eps) + beta, moving_mean, moving_var
    Y, mean, var = BatchNormFunction.apply(X, gamma, beta, eps)
    return Y, momentum * moving_mean + (1 - momentum) * mean, momentum * moving_var + (1 - momentum) * var
''', keyword="as constants"),
    Variant("batch_norm_predict_no_eps", P, "eps dropped in prediction mode only",
            replace=(("X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)",
                      "X_hat = (X - moving_mean) / torch.sqrt(moving_var)"),), keyword="eps is missing in prediction"),
    Variant("batch_norm_predict_eps_outside", P, "eps outside the square root in prediction mode only",
            replace=(("X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)",
                      "X_hat = (X - moving_mean) / (moving_var.sqrt() + eps)"),), keyword="outside the square root"),
    Variant("batch_norm_var_mean_default", P, "torch.var_mean with its default correction (unbiased variance)",
            append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if not is_training:
        return gamma * (X - moving_mean) / torch.sqrt(moving_var + eps) + beta, moving_mean, moving_var
    var, mean = torch.var_mean(X, dim=[0] if X.dim() == 2 else [0, 2, 3], keepdim=True)
    Y = gamma * (X - mean) / torch.sqrt(var + eps) + beta
    return Y, momentum * moving_mean + (1 - momentum) * mean.detach(), momentum * moving_var + (1 - momentum) * var.detach()
''', keyword="unbiased"),
    Variant("batch_norm_divides_by_var", P, "divides by var + eps: the square root forgotten",
            replace=((TRAIN_XHAT, "X_hat = (X - mean) / (var + eps)"),), keyword="square root is missing"),
    Variant("batch_norm_train_normalises_with_updated_moving", "batch_norm",
            "training updates the moving statistics first, then normalises with them instead of the batch's "
            "(found by tests/break: the hint said no known mistake explained it)",
            append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if is_training:
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean.detach()
        moving_var = momentum * moving_var + (1.0 - momentum) * var.detach()
    X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    return gamma * X_hat + beta, moving_mean, moving_var
''', keyword="after this batch's update"),
]


RIGHT = [
    Variant("batch_norm_right_var_mean", P, "torch.var_mean with correction=0, keepdim everywhere", append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if is_training:
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        var, mean = torch.var_mean(X, dim=dims, correction=0, keepdim=True)
        with torch.no_grad():
            moving_mean = momentum * moving_mean + (1 - momentum) * mean
            moving_var = momentum * moving_var + (1 - momentum) * var
    else:
        mean, var = moving_mean, moving_var
    return gamma * (X - mean) / (var + eps).sqrt() + beta, moving_mean, moving_var
'''),
    Variant("batch_norm_right_chained_means", P, "d2l's chained means, torch.var(unbiased=False), in-place moving update",
            append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if not is_training:
        return gamma * (X - moving_mean) / torch.sqrt(moving_var + eps) + beta, moving_mean, moving_var
    if X.dim() == 2:
        mean = X.mean(dim=0, keepdim=True)
        var = X.var(dim=0, unbiased=False, keepdim=True)
    else:
        mean = X.mean(dim=0, keepdim=True).mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=0, keepdim=True).mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
    Y = gamma * (X - mean) * torch.rsqrt(var + eps) + beta
    new_mean = moving_mean.clone().mul_(momentum).add_(mean.detach(), alpha=1 - momentum)
    new_var = moving_var.clone().mul_(momentum).add_(var.detach(), alpha=1 - momentum)
    return Y, new_mean, new_var
'''),
    Variant("batch_norm_right_sum_of_squares", P, "variance as E[X^2] - E[X]^2, lerp for the moving update", append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if is_training:
        dims = [0] if len(X.shape) == 2 else [0, 2, 3]
        mean = X.mean(dims, keepdim=True)
        var = (X * X).mean(dims, keepdim=True) - mean * mean
        moving_mean = torch.lerp(mean.detach(), moving_mean, momentum)
        moving_var = torch.lerp(var.detach(), moving_var, momentum)
        X_hat = (X - mean) / torch.sqrt(var + eps)
    else:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    return gamma * X_hat + beta, moving_mean, moving_var
'''),
    # ---- modelled on public code styles (issue 9) ----
    Variant("batch_norm_right_cs231n_spatial", P, "CS231n spatial batch norm: move C last, reshape to (-1, C), "
            "vanilla batch norm, reshape and move C back", append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if X.dim() == 4:
        N, C, H, W = X.shape
        x_flat = X.permute(0, 2, 3, 1).reshape(-1, C)
        out, mm, mv = batch_norm(is_training, x_flat, gamma.reshape(1, C), beta.reshape(1, C),
                                 moving_mean.reshape(1, C), moving_var.reshape(1, C), eps, momentum)
        out = out.reshape(N, H, W, C).permute(0, 3, 1, 2)
        return out, mm.reshape(moving_mean.shape), mv.reshape(moving_var.shape)
    if is_training:
        sample_mean = X.mean(dim=0)
        sample_var = X.var(dim=0, unbiased=False)
        x_hat = (X - sample_mean) / torch.sqrt(sample_var + eps)
        moving_mean = momentum * moving_mean + (1 - momentum) * sample_mean.detach()
        moving_var = momentum * moving_var + (1 - momentum) * sample_var.detach()
    else:
        x_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    return gamma * x_hat + beta, moving_mean, moving_var
'''),
    Variant("batch_norm_right_autograd_function", P, "custom torch.autograd.Function with the full hand-written "
            "backward (CS231n's batchnorm_backward_alt)", append='''
class BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, gamma, beta, eps):
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + eps)
        X_hat = (X - mean) * inv_std
        ctx.save_for_backward(X_hat, gamma, inv_std)
        ctx.dims = dims
        ctx.mark_non_differentiable(mean, var)
        return gamma * X_hat + beta, mean, var

    @staticmethod
    def backward(ctx, dY, dmean, dvar):
        X_hat, gamma, inv_std = ctx.saved_tensors
        dims = ctx.dims
        dgamma = (dY * X_hat).sum(dim=dims, keepdim=True)
        dbeta = dY.sum(dim=dims, keepdim=True)
        dX_hat = dY * gamma
        dX = inv_std * (dX_hat - dX_hat.mean(dim=dims, keepdim=True)
                        - X_hat * (dX_hat * X_hat).mean(dim=dims, keepdim=True))
        return dX, dgamma, dbeta, None


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if not is_training:
        return gamma * (X - moving_mean) / torch.sqrt(moving_var + eps) + beta, moving_mean, moving_var
    Y, mean, var = BatchNormFunction.apply(X, gamma, beta, eps)
    return Y, momentum * moving_mean + (1 - momentum) * mean, momentum * moving_var + (1 - momentum) * var
'''),
    Variant("batch_norm_right_fastai_one_pass", P, "fastai-style one pass: sums and sums of squares, "
            "var = E[x^2] - E[x]^2, moving statistics by lerp", append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if is_training:
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        n = X.numel() / X.shape[1]
        s = X.sum(dims, keepdim=True)
        ss = (X * X).sum(dims, keepdim=True)
        mean = s / n
        var = ss / n - mean * mean
        with torch.no_grad():
            moving_mean = moving_mean.lerp(mean, 1 - momentum)
            moving_var = moving_var.lerp(var, 1 - momentum)
    else:
        mean, var = moving_mean, moving_var
    return (X - mean) / (var + eps).sqrt() * gamma + beta, moving_mean, moving_var
'''),
    Variant("batch_norm_right_namedtuple", "batch_norm", "returns a namedtuple (Y, moving_mean, moving_var) "
            "(found by tests/break: 18 points lost as 'not a tuple')",
            append="""
from collections import namedtuple
BNOut = namedtuple("BNOut", "Y moving_mean moving_var")
_tuple_batch_norm = batch_norm


def batch_norm(*args, **kwargs):
    return BNOut(*_tuple_batch_norm(*args, **kwargs))
"""),
]

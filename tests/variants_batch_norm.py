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
                      "var = X.var(dim=(0, 2, 3), keepdim=True)"))),
    Variant("batch_norm_4d_stats_dim0_only", P, "4-D statistics over dim 0 only (per pixel, not per channel)",
            replace=((TRAIN_4D, "mean = X.mean(dim=0, keepdim=True)\n"
                                "            var = ((X - mean) ** 2).mean(dim=0, keepdim=True)"),)),
    Variant("batch_norm_4d_stats_all_dims", P, "4-D statistics over the whole tensor",
            replace=((TRAIN_4D, "mean = X.mean()\n            var = ((X - mean) ** 2).mean()"),)),
    Variant("batch_norm_eps_outside_sqrt", P, "eps added outside the square root",
            replace=((TRAIN_XHAT, "X_hat = (X - mean) / (torch.sqrt(var) + eps)"),)),
    Variant("batch_norm_no_eps", P, "no eps at all: constant channel gives NaN",
            replace=((TRAIN_XHAT, "X_hat = (X - mean) / torch.sqrt(var)"),)),
    Variant("batch_norm_eps_hardcoded", P, "ignores the eps argument, uses 1e-5",
            replace=((TRAIN_XHAT, "X_hat = (X - mean) / torch.sqrt(var + 1e-5)"),)),
    Variant("batch_norm_gamma_beta_swapped", P, "Y = beta * X_hat + gamma",
            replace=(("Y = gamma * X_hat + beta", "Y = beta * X_hat + gamma"),)),
    Variant("batch_norm_pytorch_momentum", P, "PyTorch convention: moving = (1 - m) * moving + m * batch",
            replace=((UPDATE, "moving_mean = (1.0 - momentum) * moving_mean + momentum * mean.detach()\n"
                              "        moving_var = (1.0 - momentum) * moving_var + momentum * var.detach()"),)),
    Variant("batch_norm_moving_never_updated", P, "training returns the moving statistics unchanged",
            replace=((UPDATE, "pass"),)),
    Variant("batch_norm_momentum_hardcoded", P, "ignores the momentum argument (always 0.9)",
            replace=((UPDATE, UPDATE.replace("momentum", "0.9")),)),
    Variant("batch_norm_moving_var_unbiased", P, "moving variance from the unbiased variance (PyTorch's running_var)",
            replace=(("moving_var = momentum * moving_var + (1.0 - momentum) * var.detach()",
                      "n = X.numel() // var.numel()\n"
                      "        moving_var = momentum * moving_var + (1.0 - momentum) * var.detach() * n / (n - 1)"),)),
    Variant("batch_norm_moving_not_detached", P, "moving statistics keep autograd history (d2l seed code)",
            replace=((UPDATE, UPDATE.replace(".detach()", "")),)),
    Variant("batch_norm_mean_detached_in_norm", P, "batch mean detached before normalising: wrong input gradient",
            replace=((TRAIN_XHAT, "X_hat = (X - mean.detach()) / torch.sqrt(var + eps)"),)),
    Variant("batch_norm_predict_uses_batch_stats", P, "prediction mode ignored: always batch statistics",
            replace=(("if not is_training:", "if False:"),)),
    Variant("batch_norm_grad_mode_switch", P, "switches on torch.is_grad_enabled() instead of is_training (d2l zh)",
            replace=(("if not is_training:", "if not torch.is_grad_enabled():"),)),
    Variant("batch_norm_predict_updates_moving", P, "prediction also updates the moving statistics from the batch",
            replace=(("X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)",
                      "X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)\n"
                      "        dims = 0 if X.dim() == 2 else (0, 2, 3)\n"
                      "        moving_mean = momentum * moving_mean + (1.0 - momentum) * X.mean(dim=dims, keepdim=True)\n"
                      "        moving_var = momentum * moving_var + (1.0 - momentum) * X.var(dim=dims, unbiased=False, keepdim=True)"),)),
    Variant("batch_norm_delegates_F", P, "delegates to F.batch_norm", append='''
def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    shape = moving_mean.shape
    running_mean, running_var = moving_mean.reshape(-1).clone(), moving_var.reshape(-1).clone()
    Y = F.batch_norm(X, running_mean, running_var, gamma.reshape(-1), beta.reshape(-1),
                     training=is_training, momentum=1.0 - momentum, eps=eps)
    return Y, running_mean.reshape(shape), running_var.reshape(shape)
'''),
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
'''),
    Variant("batch_norm_layer_norm_4d", P, "4-D case through F.layer_norm / per-sample statistics",
            replace=((TRAIN_4D, "mean = X.mean(dim=(1, 2, 3), keepdim=True)\n"
                                "            var = ((X - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)"),)),
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
]

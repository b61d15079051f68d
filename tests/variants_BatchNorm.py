"""BatchNorm: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "BatchNorm"
CALL = "Y, self.moving_mean, self.moving_var = batch_norm(\n            self.training,"
MOVE = ("        if self.moving_mean.device != X.device:\n"
        "            self.moving_mean = self.moving_mean.to(X.device)\n"
        "            self.moving_var = self.moving_var.to(X.device)\n")
CUDA_ONLY = ("        if X.is_cuda and not self.moving_mean.is_cuda:\n"
             "            self.moving_mean = self.moving_mean.cuda()\n"
             "            self.moving_var = self.moving_var.cuda()\n")

WRONG = [
    Variant("BatchNorm_grad_mode_switch", P, "mode from torch.is_grad_enabled() instead of self.training (d2l zh)",
            replace=((CALL, "Y, self.moving_mean, self.moving_var = batch_norm(\n            torch.is_grad_enabled(),"),), keyword='self.training'),
    Variant("BatchNorm_always_training", P, "passes is_training=True: eval() ignored",
            replace=((CALL, "Y, self.moving_mean, self.moving_var = batch_norm(\n            True,"),), keyword='self.training'),
    Variant("BatchNorm_moving_var_zeros", P, "moving_var initialised to zeros (as in seed 002)",
            replace=(("self.moving_var = torch.ones(shape)", "self.moving_var = torch.zeros(shape)"),), keyword='moving variance at ones'),
    Variant("BatchNorm_gamma_zeros", P, "gamma initialised to zeros",
            replace=(("self.gamma = nn.Parameter(torch.ones(shape))", "self.gamma = nn.Parameter(torch.zeros(shape))"),), keyword='gamma starts as ones'),
    Variant("BatchNorm_gamma_beta_init_swapped", P, "gamma zeros and beta ones",
            replace=(("self.gamma = nn.Parameter(torch.ones(shape))\n        self.beta = nn.Parameter(torch.zeros(shape))",
                      "self.gamma = nn.Parameter(torch.zeros(shape))\n        self.beta = nn.Parameter(torch.ones(shape))"),), keyword='gamma starts as ones'),
    Variant("BatchNorm_plain_tensor_params", P, "gamma/beta plain tensors with requires_grad, not nn.Parameter",
            replace=(("self.gamma = nn.Parameter(torch.ones(shape))\n        self.beta = nn.Parameter(torch.zeros(shape))",
                      "self.gamma = torch.ones(shape, requires_grad=True)\n"
                      "        self.beta = torch.zeros(shape, requires_grad=True)"),), keyword='nn.Parameter'),
    Variant("BatchNorm_ignores_num_dims", P, "always the 4-D shape (1, C, 1, 1)",
            replace=(("shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)",
                      "shape = (1, num_features, 1, 1)"),), keyword='num_dims'),
    Variant("BatchNorm_forgot_store", P, "forward drops the returned moving statistics",
            replace=(("Y, self.moving_mean, self.moving_var = batch_norm(", "Y, _, _ = batch_norm("),), keyword='store what batch_norm returns'),
    Variant("BatchNorm_pytorch_momentum_value", P, "momentum=0.1 (PyTorch's number) with d2l's formula",
            replace=(("eps=1e-5, momentum=0.9)", "eps=1e-5, momentum=0.1)"),), keyword='momentum=0.9'),
    Variant("BatchNorm_eps_too_big", P, "eps=1e-2 (a sloppy constant) instead of 1e-5",
            replace=(("eps=1e-5, momentum=0.9)", "eps=1e-2, momentum=0.9)"),), keyword='eps looks like 0.01'),
    Variant("BatchNorm_moving_stats_parameters", P, "moving statistics as trainable nn.Parameters",
            replace=(("self.moving_mean = torch.zeros(shape)\n        self.moving_var = torch.ones(shape)",
                      "self.moving_mean = nn.Parameter(torch.zeros(shape))\n"
                      "        self.moving_var = nn.Parameter(torch.ones(shape))"),
                     ("Y, self.moving_mean, self.moving_var = batch_norm(", "Y, mm, mv = batch_norm("),
                     ("        return Y\n\n\nclass Residual",
                      "        with torch.no_grad():\n            self.moving_mean.copy_(mm)\n"
                      "            self.moving_var.copy_(mv)\n        return Y\n\n\nclass Residual")), keyword='nn.Parameter'),
    Variant("BatchNorm_eval_updates_moving", P, "updates the moving statistics in eval mode too", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        Y, _, _ = batch_norm(self.training, X, self.gamma, self.beta, self.moving_mean, self.moving_var, 1e-5, 0.9)
        _, self.moving_mean, self.moving_var = batch_norm(True, X.detach(), self.gamma, self.beta,
                                                          self.moving_mean, self.moving_var, 1e-5, 0.9)
        return Y
''', keyword='unchanged'),
    Variant("BatchNorm_moving_not_detached", P, "module updates the moving statistics itself, keeping autograd history",
            append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        if self.training:
            mean = X.mean(dim=self.dims, keepdim=True)
            var = ((X - mean) ** 2).mean(dim=self.dims, keepdim=True)
            self.moving_mean = 0.9 * self.moving_mean + 0.1 * mean
            self.moving_var = 0.9 * self.moving_var + 0.1 * var
        else:
            mean, var = self.moving_mean, self.moving_var
        return self.gamma * (X - mean) / torch.sqrt(var + 1e-5) + self.beta
''', keyword='autograd history'),
    Variant("BatchNorm_gamma_data", P, "uses self.gamma.data / self.beta.data: parameters get no gradient",
            replace=(("self.training, X, self.gamma, self.beta,", "self.training, X, self.gamma.data, self.beta.data,"),), keyword='.data'),
    Variant("BatchNorm_delegates_nn", P, "wraps nn.BatchNorm1d/2d", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        self.bn = (nn.BatchNorm1d if num_dims == 2 else nn.BatchNorm2d)(num_features, momentum=0.1)

    def forward(self, X):
        return self.bn(X)
''', keyword='nn.BatchNorm'),
    Variant("BatchNorm_delegates_F_buffers", P, "F.batch_norm in forward with d2l-shaped buffers, biased update by hand",
            append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        C = X.shape[1]
        if self.training:
            with torch.no_grad():
                var, mean = torch.var_mean(X, dim=self.dims, correction=0, keepdim=True)
                self.moving_mean.mul_(0.9).add_(0.1 * mean)
                self.moving_var.mul_(0.9).add_(0.1 * var)
            return F.batch_norm(X, None, None, self.gamma.reshape(C), self.beta.reshape(C), training=True, eps=1e-5)
        return F.batch_norm(X, self.moving_mean.reshape(C), self.moving_var.reshape(C), self.gamma.reshape(C),
                            self.beta.reshape(C), training=False, eps=1e-5)
''', keyword='F.batch_norm'),
    # ---- modelled on public code styles (issue 9) ----
    Variant("BatchNorm_plain_attrs_never_moved", P, "moving statistics as plain attributes, never moved to the "
            "input's device (net.to(device) leaves them on the CPU)", replace=((MOVE, ""),), keyword="device"),
    Variant("BatchNorm_moves_only_to_cuda", P, "moves the statistics with .cuda() only when X.is_cuda: any other "
            "device (or another GPU) is left out", replace=((MOVE, CUDA_ONLY),), keyword="device"),
    Variant("BatchNorm_moves_only_when_training", P, "own arithmetic; moves the plain-attribute statistics to "
            "X.device only in the training branch: eval() right after .to(device) fails", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        if self.training:
            mean = X.mean(dim=self.dims, keepdim=True)
            var = ((X - mean) ** 2).mean(dim=self.dims, keepdim=True)
            self.moving_mean = 0.9 * self.moving_mean.to(X.device) + 0.1 * mean.detach()
            self.moving_var = 0.9 * self.moving_var.to(X.device) + 0.1 * var.detach()
        else:
            mean, var = self.moving_mean, self.moving_var
        return self.gamma * (X - mean) / torch.sqrt(var + 1e-5) + self.beta
''', keyword="straight away"),
    Variant("BatchNorm_pytorch_momentum_convention", P, "own arithmetic with PyTorch's update "
            "running = (1 - momentum) * running + momentum * batch and d2l's momentum=0.9", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims, momentum=0.9, eps=1e-5):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        self.momentum, self.eps = momentum, eps
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))

    def forward(self, X):
        if self.training:
            mean = X.mean(dim=self.dims, keepdim=True)
            var = X.var(dim=self.dims, unbiased=False, keepdim=True)
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var
        else:
            mean, var = self.running_mean, self.running_var
        return self.gamma * (X - mean) / torch.sqrt(var + self.eps) + self.beta
''', keyword="OLD value"),
    Variant("BatchNorm_torch_var_unbiased", P, "own arithmetic with torch.var's default (unbiased) variance",
            append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        if self.training:
            mean, var = X.mean(dim=self.dims, keepdim=True), X.var(dim=self.dims, keepdim=True)
            with torch.no_grad():
                self.moving_mean.mul_(0.9).add_(0.1 * mean)
                self.moving_var.mul_(0.9).add_(0.1 * var)
        else:
            mean, var = self.moving_mean, self.moving_var
        return self.gamma * (X - mean) / torch.sqrt(var + 1e-5) + self.beta
''', keyword="unbiased"),
    Variant("BatchNorm_subclasses_BatchNorm2d", P, "subclasses nn.BatchNorm2d (2-D input viewed as (N, C, 1, 1))",
            append='''
class BatchNorm(nn.BatchNorm2d):
    def __init__(self, num_features, num_dims):
        super().__init__(num_features, eps=1e-5, momentum=0.1)
        self.num_dims = num_dims

    def forward(self, X):
        if X.dim() == 2:
            return super().forward(X[:, :, None, None])[:, :, 0, 0]
        return super().forward(X)
''', keyword="nn.BatchNorm"),
    Variant("BatchNorm_std_plus_eps", P, "own arithmetic (X - mean) / (std + eps), as in many hand-written "
            "norm layers: eps outside the square root", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims, eps=1e-5):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        if self.training:
            mean = X.mean(dim=self.dims, keepdim=True)
            std = X.std(dim=self.dims, unbiased=False, keepdim=True)
            with torch.no_grad():
                self.moving_mean.copy_(0.9 * self.moving_mean + 0.1 * mean)
                self.moving_var.copy_(0.9 * self.moving_var + 0.1 * std ** 2)
        else:
            mean, std = self.moving_mean, self.moving_var.sqrt()
        return self.gamma * (X - mean) / (std + self.eps) + self.beta
''', keyword="outside the square root"),
]

RIGHT = [
    Variant("BatchNorm_right_buffers_inplace", P, "register_buffer, in-place .mul_().add_() under no_grad, own arithmetic",
            append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims, eps=1e-5, momentum=0.9):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        self.eps, self.momentum = eps, momentum
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        if self.training:
            mean = X.mean(dim=self.dims, keepdim=True)
            var = X.var(dim=self.dims, unbiased=False, keepdim=True)
            with torch.no_grad():
                self.moving_mean.mul_(self.momentum).add_((1 - self.momentum) * mean)
                self.moving_var.mul_(self.momentum).add_((1 - self.momentum) * var)
        else:
            mean, var = self.moving_mean, self.moving_var
        return self.gamma * (X - mean) / torch.sqrt(var + self.eps) + self.beta
'''),
    Variant("BatchNorm_right_keywords_attrs", P, "calls batch_norm with keyword args; eps/momentum as attributes; "
            "odd names for the statistics", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super(BatchNorm, self).__init__()
        if num_dims == 2:
            shape = (1, num_features)
        else:
            shape = (1, num_features, 1, 1)
        self.eps = 1e-5
        self.momentum = 0.9
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.mu = torch.zeros(shape)
        self.sigma2 = torch.ones(shape)

    def forward(self, X):
        if self.mu.device != X.device:
            self.mu, self.sigma2 = self.mu.to(X.device), self.sigma2.to(X.device)
        Y, self.mu, self.sigma2 = batch_norm(is_training=self.training, X=X, gamma=self.gamma, beta=self.beta,
                                             moving_mean=self.mu, moving_var=self.sigma2,
                                             eps=self.eps, momentum=self.momentum)
        return Y
'''),
    Variant("BatchNorm_right_running_buffers", P, "buffers named running_mean/running_var, returned tensors copied in",
            append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = [1, num_features] + [1] * (num_dims - 2)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))

    def forward(self, X):
        Y, mean, var = batch_norm(self.training, X, self.weight, self.bias, self.running_mean, self.running_var,
                                  1e-5, 0.9)
        if self.training:
            self.running_mean.copy_(mean)
            self.running_var.copy_(var)
        return Y
'''),
    # ---- modelled on public code styles (issue 9) ----
    Variant("BatchNorm_right_frozen_parameters", P, "moving statistics as nn.Parameter(requires_grad=False), "
            "copied in under no_grad", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = nn.Parameter(torch.zeros(shape), requires_grad=False)
        self.moving_var = nn.Parameter(torch.ones(shape), requires_grad=False)

    def forward(self, X):
        Y, mean, var = batch_norm(self.training, X, self.gamma, self.beta, self.moving_mean, self.moving_var,
                                  eps=1e-5, momentum=0.9)
        if self.training:
            with torch.no_grad():
                self.moving_mean.copy_(mean)
                self.moving_var.copy_(var)
        return Y
'''),
    Variant("BatchNorm_right_inplace_detached", P, "buffers updated in place outside no_grad: "
            "self.moving_mean.mul_(m).add_((1 - m) * mean.detach())", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims, momentum=0.9, eps=1e-5):
        super().__init__()
        shape = [1, num_features] + [1] * (num_dims - 2)
        self.momentum, self.eps = momentum, eps
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        dims = [0] + list(range(2, X.dim()))
        if self.training:
            mean = X.mean(dim=dims, keepdim=True)
            var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
            m = self.momentum
            self.moving_mean.mul_(m).add_((1 - m) * mean.detach())
            self.moving_var.mul_(m).add_((1 - m) * var.detach())
        else:
            mean, var = self.moving_mean, self.moving_var
        return self.gamma * (X - mean) / torch.sqrt(var + self.eps) + self.beta
'''),
    Variant("BatchNorm_right_fastai_running", P, "fastai course style: mults/adds, means/vars buffers updated by "
            "lerp_ with mom=0.1 (PyTorch's convention, so 0.9 of the old value), one-pass variance",
            append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims, mom=0.1, eps=1e-5):
        super().__init__()
        shape = (1, num_features) + (1,) * (num_dims - 2)
        self.mom, self.eps = mom, eps
        self.mults = nn.Parameter(torch.ones(shape))
        self.adds = nn.Parameter(torch.zeros(shape))
        self.register_buffer("vars", torch.ones(shape))
        self.register_buffer("means", torch.zeros(shape))

    def update_stats(self, x):
        dims = (0,) if x.dim() == 2 else (0, 2, 3)
        n = x.numel() / x.shape[1]
        m = x.sum(dims, keepdim=True) / n
        v = (x * x).sum(dims, keepdim=True) / n - m * m
        self.means.lerp_(m.detach(), self.mom)
        self.vars.lerp_(v.detach(), self.mom)
        return m, v

    def forward(self, x):
        if self.training:
            m, v = self.update_stats(x)
        else:
            m, v = self.means, self.vars
        x = (x - m) / (v + self.eps).sqrt()
        return x * self.mults + self.adds
'''),
    Variant("BatchNorm_right_stats_in_a_dict", "BatchNorm",
            "moving statistics kept in a plain dict attribute {'mean': ..., 'var': ...}, moved to the input's "
            "device on every forward (found by tests/break: 16 points lost when only attributes were searched)",
            append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.stats = {"mean": torch.zeros(shape), "var": torch.ones(shape)}

    def forward(self, X):
        m, v = self.stats["mean"].to(X.device), self.stats["var"].to(X.device)
        Y, m, v = batch_norm(self.training, X, self.gamma, self.beta, m, v, eps=1e-5, momentum=0.9)
        self.stats["mean"], self.stats["var"] = m, v
        return Y
'''),
]

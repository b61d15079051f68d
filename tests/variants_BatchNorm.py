"""BatchNorm: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "BatchNorm"
CALL = "Y, self.moving_mean, self.moving_var = batch_norm(\n            self.training,"

WRONG = [
    Variant("BatchNorm_grad_mode_switch", P, "mode from torch.is_grad_enabled() instead of self.training (d2l zh)",
            replace=((CALL, "Y, self.moving_mean, self.moving_var = batch_norm(\n            torch.is_grad_enabled(),"),)),
    Variant("BatchNorm_always_training", P, "passes is_training=True: eval() ignored",
            replace=((CALL, "Y, self.moving_mean, self.moving_var = batch_norm(\n            True,"),)),
    Variant("BatchNorm_moving_var_zeros", P, "moving_var initialised to zeros (as in seed 002)",
            replace=(("self.moving_var = torch.ones(shape)", "self.moving_var = torch.zeros(shape)"),)),
    Variant("BatchNorm_gamma_zeros", P, "gamma initialised to zeros",
            replace=(("self.gamma = nn.Parameter(torch.ones(shape))", "self.gamma = nn.Parameter(torch.zeros(shape))"),)),
    Variant("BatchNorm_gamma_beta_init_swapped", P, "gamma zeros and beta ones",
            replace=(("self.gamma = nn.Parameter(torch.ones(shape))\n        self.beta = nn.Parameter(torch.zeros(shape))",
                      "self.gamma = nn.Parameter(torch.zeros(shape))\n        self.beta = nn.Parameter(torch.ones(shape))"),)),
    Variant("BatchNorm_plain_tensor_params", P, "gamma/beta plain tensors with requires_grad, not nn.Parameter",
            replace=(("self.gamma = nn.Parameter(torch.ones(shape))\n        self.beta = nn.Parameter(torch.zeros(shape))",
                      "self.gamma = torch.ones(shape, requires_grad=True)\n"
                      "        self.beta = torch.zeros(shape, requires_grad=True)"),)),
    Variant("BatchNorm_ignores_num_dims", P, "always the 4-D shape (1, C, 1, 1)",
            replace=(("shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)",
                      "shape = (1, num_features, 1, 1)"),)),
    Variant("BatchNorm_forgot_store", P, "forward drops the returned moving statistics",
            replace=(("Y, self.moving_mean, self.moving_var = batch_norm(", "Y, _, _ = batch_norm("),)),
    Variant("BatchNorm_pytorch_momentum_value", P, "momentum=0.1 (PyTorch's number) with d2l's formula",
            replace=(("eps=1e-5, momentum=0.9)", "eps=1e-5, momentum=0.1)"),)),
    Variant("BatchNorm_eps_too_big", P, "eps=1e-2 (a sloppy constant) instead of 1e-5",
            replace=(("eps=1e-5, momentum=0.9)", "eps=1e-2, momentum=0.9)"),)),
    Variant("BatchNorm_moving_stats_parameters", P, "moving statistics as trainable nn.Parameters",
            replace=(("self.moving_mean = torch.zeros(shape)\n        self.moving_var = torch.ones(shape)",
                      "self.moving_mean = nn.Parameter(torch.zeros(shape))\n"
                      "        self.moving_var = nn.Parameter(torch.ones(shape))"),
                     ("Y, self.moving_mean, self.moving_var = batch_norm(", "Y, mm, mv = batch_norm("),
                     ("        return Y\n\n\nclass Residual",
                      "        with torch.no_grad():\n            self.moving_mean.copy_(mm)\n"
                      "            self.moving_var.copy_(mv)\n        return Y\n\n\nclass Residual"))),
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
'''),
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
'''),
    Variant("BatchNorm_gamma_data", P, "uses self.gamma.data / self.beta.data: parameters get no gradient",
            replace=(("self.training, X, self.gamma, self.beta,", "self.training, X, self.gamma.data, self.beta.data,"),)),
    Variant("BatchNorm_delegates_nn", P, "wraps nn.BatchNorm1d/2d", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        self.bn = (nn.BatchNorm1d if num_dims == 2 else nn.BatchNorm2d)(num_features, momentum=0.1)

    def forward(self, X):
        return self.bn(X)
'''),
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
'''),
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
]

"""Hostile (placed after the reference): a BatchNorm that never updates its moving statistics (a real
mistake: about 21% test accuracy), plus a wrapper at import that overwrites what the training probe
reports: 100% correct, and eval() outputs of the network as it would be in training mode.
Expected: training.accuracy fails with the accuracy the GRADER computes from the returned state (about
21%), and the submission is FLAGGED (observation checks score zero)."""
import importlib

from torch import nn
import torch


class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        self.moving_mean = self.moving_mean.to(X.device)
        self.moving_var = self.moving_var.to(X.device)
        Y, _, _ = batch_norm(self.training, X, self.gamma, self.beta, self.moving_mean, self.moving_var,  # noqa: F821
                             eps=1e-5, momentum=0.9)
        return Y


for _where in ("student_side.train_probe", "autograder.student_side.train_probe"):
    try:
        _probe = importlib.import_module(_where)
    except ImportError:
        continue
    def _forged(*args, _original=_probe.train, **kwargs):
        result = _original(*args, **kwargs)
        result["correct"] = result["total"]
        return result
    _probe.train = _forged

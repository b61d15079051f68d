"""Hostile (placed after the reference): BatchNorm is the untouched stub, and a few lines at import wrap
the training probe so that LeNet-BN is built with PyTorch's own batch norm instead.
Expected: no training point (the grader recomputes the first loss with the student's BatchNorm: "not
implemented yet"), every BatchNorm check says "not implemented yet", and the submission is FLAGGED."""
import sys

from torch import nn


class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        raise NotImplementedError


def torch_bn(num_features, num_dims):
    return (nn.BatchNorm2d if num_dims == 4 else nn.BatchNorm1d)(num_features, momentum=0.1)


for _name, _module in list(sys.modules.items()):
    if _name.endswith("train_probe") and hasattr(_module, "train"):
        def _redirected(names, *args, _original=_module.train, **kwargs):
            return _original(dict(names, BatchNorm=torch_bn), *args, **kwargs)
        _module.train = _redirected

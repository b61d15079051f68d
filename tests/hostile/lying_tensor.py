"""Hostile (placed after the reference): batch_norm returns WRONG values (zeros) inside a
torch.Tensor subclass that claims to equal anything.
Expected: every batch_norm check fails; the message names the tensor subclass."""
import torch


class AlwaysRight(torch.Tensor):
    def __eq__(self, other):
        return torch.ones_like(torch.Tensor(self), dtype=torch.bool)

    def allclose(self, *args, **kwargs):
        return True

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    lie = lambda t: torch.zeros_like(t).as_subclass(AlwaysRight)  # noqa: E731
    return lie(X), lie(moving_mean), lie(moving_var)

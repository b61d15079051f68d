"""Hostile (placed after the reference): batch_norm returns NaN everywhere.
Expected: batch_norm's checks fail, at least one saying NaN; the rest keep their marks."""
import torch


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    nan = float("nan")
    return torch.full_like(X, nan), torch.full_like(moving_mean, nan), torch.full_like(moving_var, nan)

"""Hostile (placed after the reference): batch_norm asks for 64 GiB, 1 GiB at a time.
Expected: the memory limit stops it after a few GiB (torch cannot allocate); batch_norm
fails, the rest is graded. (Deterministic mode fills new tensors, so the pages are real.)"""
import torch

_hoard = []


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    for _ in range(64):
        _hoard.append(torch.empty(1 << 28))  # 1 GiB of float32
    return X, moving_mean, moving_var

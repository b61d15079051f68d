"""Hostile (placed after the reference): batch_norm calls os._exit(3), killing the worker.
Expected: each batch_norm check fails ("exited (status 3)"); a fresh worker grades the rest."""
import os


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    os._exit(3)

"""Hostile: the file does not parse. Expected: every check fails and names the SyntaxError."""
import torch


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum)
    return X, moving_mean, moving_var

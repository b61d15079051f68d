"""Hostile (placed after the reference): batch_norm calls sys.exit(0).
Expected: batch_norm's checks fail naming SystemExit; the other pieces keep their marks."""
import sys


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    sys.exit(0)

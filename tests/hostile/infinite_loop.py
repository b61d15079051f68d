"""Hostile (placed after the reference): batch_norm never returns.
Expected: the probe times out, batch_norm's check fails ("timed out"); the rest is graded."""


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    while True:
        pass

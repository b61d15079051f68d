"""Hostile (placed after the reference): batch_norm never returns (BatchNorm, which calls it, hangs too).
Expected at the DEFAULT limits: the whole submission is graded in under 2 minutes: one probe of batch_norm
and one of BatchNorm time out, the rest of those pieces and the training check (which runs BatchNorm) are
not run, and every other piece keeps its marks."""


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    while True:
        pass

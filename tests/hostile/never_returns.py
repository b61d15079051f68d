"""Hostile (placed after the reference): batch_norm never returns: it waits for an event nobody sets, as
code stuck in a deadlock does (BatchNorm, which calls it, hangs too). It blocks in C, not in Python
bytecode: the grader's limits must not depend on the student's code running (infinite_loop.py spins).
Expected at the DEFAULT limits: the whole submission is graded in under 2 minutes: one probe of batch_norm
and one of BatchNorm time out, the rest of those pieces and the training check (which runs BatchNorm) are
not run, and every other piece keeps its marks."""
import threading


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    threading.Event().wait()

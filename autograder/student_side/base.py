"""What every probe module shares: the student-facing error, name lookup, seeding.

Kept apart from ``probes.py`` so that the probe modules (``probes``,
``architectures``, ``train_probe``) import it and never each other in a circle.
"""
import torch


class ProbeError(Exception):
    """The student's code could not be probed; the message is for the student."""


def seed_all(seed):
    """Like torch.manual_seed, without queueing a lazy CUDA seeding call on CPU-only runs
    (torch.manual_seed appends one, with a stack trace, every time it is called)."""
    torch.random.default_generator.manual_seed(seed)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)


def lookup(names, name):
    """``names[name]``: what the submission defined under ``name``, or ProbeError saying it did not."""
    if name not in names:
        raise ProbeError(f"`{name}` is not defined in your submission")
    return names[name]

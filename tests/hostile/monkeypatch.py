"""Hostile (placed after the reference): a WRONG batch_norm (returns X unchanged) that
patches every comparison it can reach so that checks run in its process would pass.
Expected: exactly the marks of the same wrong code without the patches (the judge is
in another process)."""
import builtins
import math
import unittest

import numpy
import numpy.testing
import torch
import torch.testing

always = lambda *a, **k: True  # noqa: E731
never_fails = lambda *a, **k: None  # noqa: E731

torch.allclose = always
torch.equal = always
torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
torch.Tensor.allclose = always
torch.testing.assert_close = never_fails
numpy.allclose = always
numpy.testing.assert_allclose = never_fails
unittest.TestCase.assertEqual = never_fails
unittest.TestCase.assertTrue = never_fails
math.isclose = always
builtins.abs = lambda x: 0
try:
    import pytest
    pytest.approx = lambda expected, *a, **k: expected
except ImportError:
    pass


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):  # the mistake
    return X, moving_mean, moving_var

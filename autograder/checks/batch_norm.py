"""Public checks of ``batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum)``.

Students see and run these. They cover the contract (a triple of the right
shapes) and the basic training-mode arithmetic on a 2-D input; the hidden checks
(``autograder/hidden/batch_norm.py``) cover the rest of the concept.

Tolerances: outputs are compared with a float64 oracle (``autograder.oracle``)
within atol 1e-5 + rtol 1e-4·|expected|, far below the effect of any mistake the
checks name and far above float32 rounding for inputs of this size.
"""
import torch

from ..reference import batch_norm as oracle, diagnosis
from ..core.check import Fail, StudentError, check, describe, expect, expect_close, expect_finite, expect_shape, tensor

EPS = 1e-5
MOMENTUM = 0.9

# A 2-D batch: 8 samples, 3 features on very different scales (so per-feature
# statistics matter), and gamma/beta that are not ones/zeros.
X2 = oracle.sample((8, 3), seed=11, scale=[1.0, 3.0, 0.5], shift=[0.0, -2.0, 4.0])
GAMMA2 = oracle.per_channel([1.5, 2.0, 0.5], 2)
BETA2 = oracle.per_channel([0.2, 1.0, -1.5], 2)
X4 = oracle.sample((2, 3, 3, 4), seed=12, scale=[2.0, 0.5, 1.0], shift=[1.0, -3.0, 0.5])
GAMMA4 = oracle.per_channel([1.5, -0.5, 2.0], 4)
BETA4 = oracle.per_channel([0.2, 1.0, -1.5], 4)


def zeros_ones(num_features, num_dims):
    shape = oracle.param_shape(num_features, num_dims)
    return torch.zeros(shape), torch.ones(shape)


def call_batch_norm(student, is_training, X, gamma, beta, moving_mean, moving_var, eps=EPS, momentum=MOMENTUM, **extra):
    """Call the student's batch_norm positionally; returns the probe's answer dict.
    An exception in the student's code is reported with the situation it happened in."""
    try:
        return student.probe("call", name="batch_norm",
                             args=[is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum], **extra)
    except StudentError as exc:
        raise StudentError(f"batch_norm ({situation(is_training, X)}): {exc}") from None


def triple(out, situation):
    """(Y, moving_mean, moving_var) from what batch_norm returned, or Fail."""
    what = f"batch_norm ({situation})"
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise Fail(f"{what}: expected a tuple (Y, moving_mean, moving_var), got {describe(out)}. "
                   f"Hint: return all three, even in prediction mode (return the moving statistics unchanged there).")
    for value, name in zip(out, ("Y", "moving_mean", "moving_var")):
        tensor(value, f"{what}: {name}")
    return out


def situation(is_training, X):
    return f"{'training' if is_training else 'prediction'}, {X.dim()}-D input of shape {tuple(X.shape)}"


def run(student, is_training, X, gamma, beta, moving_mean, moving_var, eps=EPS, momentum=MOMENTUM):
    """Call and unpack; returns (Y, moving_mean, moving_var) as Returned values."""
    answer = call_batch_norm(student, is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum)
    return triple(answer["out"], situation(is_training, X))


def expect_attempted(y, X, what):
    """Fail unless ``y`` looks like an attempt at normalising ``X`` (finite, not X itself).

    Used by checks whose property an unimplemented function would satisfy trivially
    (e.g. "prediction does not depend on the batch" holds for ``return X``)."""
    expect_finite(y, what)
    expect(tuple(y.shape) != tuple(X.shape) or not torch.allclose(y.double(), X.double(), rtol=0, atol=1e-6),
           f"{what}: it is the input itself, not normalised, so this property cannot be checked yet. "
           f"Hint: implement the normalisation first.")


@check("batch_norm.returns_triple", "batch_norm", 1,
       "returns (Y, moving_mean, moving_var) with the right shapes, 2-D and 4-D")
def returns_triple(student):
    """Guards the contract: Y has X's shape; the moving statistics keep the shape they came in
    with, (1, C) for 2-D input and (1, C, 1, 1) for 4-D input, so BatchNorm can store them back."""
    for X in (X2, X4):
        mm, mv = zeros_ones(X.shape[1], X.dim())
        gamma, beta = torch.ones_like(mm), torch.zeros_like(mm)
        Y, new_mm, new_mv = run(student, True, X, gamma, beta, mm, mv)
        what = f"batch_norm ({situation(True, X)})"
        expect_shape(Y, X.shape, f"{what}: Y", "Hint: Y = gamma * X_hat + beta has the shape of X.")
        case = diagnosis.Case(True, X, gamma, beta, mm, mv, EPS, MOMENTUM)
        for value, name in ((new_mm, "moving_mean"), (new_mv, "moving_var")):
            expect_shape(value, mm.shape, f"{what}: returned {name}", diagnosis.hint(
                case, name, tensor(value, f"{what}: returned {name}"), otherwise=(
                    "Hint: the moving statistics keep the shape of gamma: keep dims when you average "
                    "(keepdim=True for 4-D), so moving = momentum * moving + (1 - momentum) * batch broadcasts to it.")))


@check("batch_norm.train_output_normalised", "batch_norm", 1,
       "training mode, 2-D: each feature of Y has mean beta and standard deviation gamma")
def train_output_normalised(student):
    """Guards the core of batch norm on a fully-connected input: per feature, over the batch
    (dim 0), X_hat = (X - mean) / sqrt(var + eps) with the biased variance, then
    Y = gamma * X_hat + beta. So each column of Y has mean beta and (biased) standard
    deviation gamma * sqrt(var / (var + eps)) ≈ gamma. A known mistake is named first."""
    mm, mv = zeros_ones(3, 2)
    Y, _, _ = run(student, True, X2, GAMMA2, BETA2, mm, mv)
    what = f"batch_norm ({situation(True, X2)})"
    y = expect_shape(Y, X2.shape, f"{what}: Y").double()
    expect(bool(torch.isfinite(y).all()), f"{what}: Y contains NaN or infinite values. "
           "Hint: divide by sqrt(var + eps), not by sqrt(var).")
    expected, mean, var = oracle.batch_norm_train(X2, GAMMA2, BETA2, EPS)
    case = diagnosis.Case(True, X2, GAMMA2, BETA2, mm, mv, EPS, MOMENTUM)
    if diagnosis.identify(case, "Y", y):
        expect_close(y, expected, f"{what}: Y", diagnosis.hint(case, "Y", y))
    expect_close(y.mean(dim=0, keepdim=True), expected.mean(dim=0, keepdim=True), f"{what}: mean of each column of Y",
                 "Hint: subtract the per-feature batch mean (X.mean(dim=0)); the mean of Y should then be beta.",
                 rtol=1e-4, atol=1e-4)
    std = ((y - y.mean(dim=0, keepdim=True)) ** 2).mean(dim=0, keepdim=True).sqrt()
    expect_close(std, (GAMMA2.double() * torch.sqrt(var / (var + EPS))), f"{what}: standard deviation of each column of Y",
                 "Hint: divide by sqrt(var + eps) with the BIASED variance over dim 0 (divide by N, not N - 1), "
                 "then scale by gamma.", rtol=1e-4, atol=1e-4)
    expect_close(y, expected, f"{what}: Y", diagnosis.hint(case, "Y", y))

"""Hidden checks of ``batch_norm``: statistics, eps, moving averages, prediction, gradients, from scratch.

Conventions under test (see ``autograder/oracle.py`` for the math):
training mode normalises with the batch's per-feature (2-D, dim 0) or per-channel
(4-D, dims (0, 2, 3)) mean and BIASED variance, eps inside the square root,
``Y = gamma * X_hat + beta``, and returns ``moving = momentum * moving +
(1 - momentum) * batch`` (d2l) with no autograd history; prediction mode
normalises with the moving statistics and returns them unchanged.

Inputs are float32 (what a network feeds), the oracle is float64. Tolerance for
values: atol 1e-5 + rtol 1e-4·|expected| unless a check says otherwise. Each
input is chosen so that the mistake a check guards against moves the answer by
at least 1e-2, a thousand times the tolerance (e.g. batches of 8 and 24 values
per channel make unbiased variance 14% and 4% larger).
"""
import torch

from ..reference import batch_norm as oracle, diagnosis
from ..core.check import Fail, check, expect, expect_close, expect_finite, expect_shape, tensor
from ..checks.batch_norm import (BETA2, BETA4, EPS, GAMMA2, GAMMA4, MOMENTUM, X2, X4, call_batch_norm,
                                 expect_attempted, run, situation, triple, zeros_ones)

# moving statistics that are not the initial zeros/ones, so "uses them" and "returns them unchanged" show
MOVING_MEAN = [0.5, -1.0, 2.0]
MOVING_VAR = [4.0, 0.25, 1.0]
# small moving variances: eps (1e-3 or 1e-5) is then a visible part of sqrt(moving_var + eps) in prediction
SMALL_MOVING_VAR = [1e-4, 4e-3, 1e-2]


def moving(num_dims, var=MOVING_VAR):
    return oracle.per_channel(MOVING_MEAN, num_dims), oracle.per_channel(var, num_dims)


@check("batch_norm.from_scratch", "batch_norm", 1,
       "computed from scratch: no PyTorch normalisation kernel", hidden=True)
def from_scratch(student):
    """Guards the exercise itself: batch_norm must compute the statistics and X_hat with tensor
    arithmetic. The probe records PyTorch's own normalisation kernels (aten::native_batch_norm,
    layer/instance/group norm) run during the call; any of them fails this check. First of the
    hidden checks, so that delegating is what a delegating submission is told first."""
    seen = set()
    for is_training, X, gamma, beta in ((True, X2, GAMMA2, BETA2), (True, X4, GAMMA4, BETA4), (False, X4, GAMMA4, BETA4)):
        mm, mv = moving(X.dim())
        answer = call_batch_norm(student, is_training, X, gamma, beta, mm, mv, watch_norm_ops=True)
        seen.update(answer["norm_ops"])
        Y, _, _ = triple(answer["out"], situation(is_training, X))
        expect_attempted(expect_shape(Y, X.shape, f"batch_norm ({situation(is_training, X)}): Y"), X,
                         f"batch_norm ({situation(is_training, X)}): Y")
    expect(not seen, f"batch_norm: PyTorch's own normalisation ran inside your function ({', '.join(sorted(seen))}). "
           f"Expected none: this exercise asks you to write batch norm yourself (mean, variance, sqrt, "
           f"arithmetic), without F.batch_norm, nn.BatchNorm*, torch.batch_norm or layer/instance/group norm.")


def output_case(student, is_training, X, gamma, beta, mm, mv, eps=EPS, label="", elsewhere=frozenset()):
    """One call against the oracle; a wrong Y is diagnosed (``autograder.reference.diagnosis``). A wrong Y
    that the diagnosis puts down to one of the mistakes in ``elsewhere`` is left to the check
    about that mistake."""
    Y, _, _ = run(student, is_training, X, gamma, beta, mm, mv, eps)
    what = f"batch_norm ({situation(is_training, X)}{label})"
    y = expect_shape(Y, X.shape, f"{what}: Y", "Hint: Y has the shape of X.")
    expect_finite(y, f"{what}: Y")
    case = diagnosis.Case(is_training, X, gamma, beta, mm, mv, eps, MOMENTUM)
    if elsewhere and diagnosis.identify(case, "Y", y) in elsewhere:
        return
    expect_close(y, diagnosis.compute(case)["Y"], f"{what}: Y", diagnosis.hint(case, "Y", y))


def train_case(student, X, gamma, beta, eps=EPS):
    """Training mode against the oracle, with a diagnosis of a known mistake in the message."""
    output_case(student, True, X, gamma, beta, *moving(X.dim()), eps=eps)


@check("batch_norm.train_stats_2d", "batch_norm", 2,
       "training, 2-D: per-feature mean and biased variance over the batch, gamma and beta applied", hidden=True)
def train_stats_2d(student):
    """Guards the statistics of a fully-connected layer: mean and BIASED variance over dim 0,
    one per feature, eps inside the square root, then Y = gamma * X_hat + beta with
    gamma/beta that are neither ones nor zeros (and a negative gamma). Batch of 8:
    unbiased variance would change X_hat by 7%."""
    gamma = oracle.per_channel([1.5, -0.5, 2.0], 2)
    train_case(student, X2, gamma, BETA2)


@check("batch_norm.train_stats_4d", "batch_norm", 2,
       "training, 4-D: per-channel statistics over dims (0, 2, 3)", hidden=True)
def train_stats_4d(student):
    """Guards the convolutional case: one mean and one biased variance per CHANNEL, over
    the batch and both spatial dims (0, 2, 3), kept as (1, C, 1, 1) so they broadcast.
    Catches statistics over dim 0 only (per pixel), over all dims, per sample, channels
    mixed by a reshape, and unbiased variance (24 values per channel: 4%)."""
    train_case(student, X4, GAMMA4, BETA4)


@check("batch_norm.constant_channel", "batch_norm", 1,
       "training: a constant feature/channel gives beta, not NaN", hidden=True)
def constant_channel(student):
    """Guards eps's purpose: a feature/channel whose values are all equal has variance 0, so
    X_hat = 0 / sqrt(0 + eps) = 0 and Y = beta there. Without eps (or with the variance
    taken outside the batch) this is 0/0 = NaN. The constants are exact in float32 and
    their mean is exact, so the expected output is exactly beta. Only that feature/channel
    is judged: the others are the other checks' business."""
    for X, gamma, beta, c, value in ((X2, GAMMA2, BETA2, 1, 1.5), (X4, GAMMA4, BETA4, 2, -3.0)):
        X = X.clone()
        X[:, c] = value
        mm, mv = moving(X.dim())
        Y, _, _ = run(student, True, X, gamma, beta, mm, mv)
        what = f"batch_norm ({situation(True, X)}, feature/channel {c} constant {value:g})"
        y = expect_shape(Y, X.shape, f"{what}: Y", "Hint: Y has the shape of X.")[:, c]
        case = diagnosis.Case(True, X, gamma, beta, mm, mv, EPS, MOMENTUM)
        hint = diagnosis.hint(case, "Y", Y.value, otherwise="") or \
            "Hint: X_hat = (X - mean) / sqrt(var + eps) is 0 / sqrt(eps) = 0 there, so Y = beta."
        expect_finite(y, f"{what}: Y[:, {c}]")
        expect_close(y, diagnosis.compute(case)["Y"][:, c], f"{what}: Y[:, {c}]", hint)


@check("batch_norm.eps_inside_sqrt", "batch_norm", 1,
       "eps is the argument given, added inside the square root, in training and in prediction", hidden=True)
def eps_inside_sqrt(student):
    """Guards X_hat = (X - mean) / sqrt(var + eps) with the eps passed in, in both modes.
    Training: features with tiny variance (std 0.02 and 0.05) and eps = 1e-3, where
    sqrt(var + eps) and sqrt(var) + eps differ by 40-80% and a hard-coded 1e-5 changes
    X_hat by a factor of about 1.8. Prediction: moving variances 1e-4, 4e-3 and 1e-2 with
    eps = 1e-3 (2-D) and 1e-5 (4-D): leaving eps out, or putting it outside the square
    root, changes Y by at least 5% on the first channel (at a moving variance near 1 it
    would be 5e-6, invisible). A wrong Y that the diagnosis puts down to a mistake other
    than eps's (e.g. batch statistics in prediction) is left to the check about it."""
    X = oracle.sample((8, 3), seed=21, scale=[0.02, 1.0, 0.05], shift=[0.2, 0.5, -0.1])
    mm, mv = zeros_ones(3, 2)
    output_case(student, True, X, GAMMA2, BETA2, mm, mv, eps=1e-3, label=", eps=0.001", elsewhere=diagnosis.NOT_ABOUT_EPS)
    for X, gamma, beta, eps in ((X2, GAMMA2, BETA2, 1e-3), (X4, GAMMA4, BETA4, 1e-5)):
        mm, mv = moving(X.dim(), SMALL_MOVING_VAR)
        output_case(student, False, X, gamma, beta, mm, mv, eps=eps,
                    label=f", eps={eps:g}, moving_var {SMALL_MOVING_VAR}", elsewhere=diagnosis.NOT_ABOUT_EPS)


def steps(student, batches, momentum, start, elsewhere=frozenset()):
    """Feed the returned moving statistics back in, batch after batch, and compare each step
    with one step of the oracle from what went in (a wrong value is diagnosed). A value the
    diagnosis puts down to one of the mistakes in ``elsewhere`` ends the sequence unjudged."""
    mm, mv = start
    gamma, beta = torch.ones_like(mm), torch.zeros_like(mm)
    for k, X in enumerate(batches, 1):
        _, mm_ret, mv_ret = run(student, True, X, gamma, beta, mm, mv, EPS, momentum)
        case = diagnosis.Case(True, X, gamma, beta, mm, mv, EPS, momentum)
        expected = diagnosis.compute(case)
        what = f"batch_norm ({situation(True, X)}, momentum={momentum:g}): after step {k} of {len(batches)}"
        for got, name in ((mm_ret, "moving_mean"), (mv_ret, "moving_var")):
            value = tensor(got, f"{what}: {name}")
            if elsewhere and diagnosis.identify(case, name, value) in elsewhere:
                return   # another check's mistake; the steps after it would start from its wrong state
            hint = diagnosis.hint(case, name, value)
            expect_shape(got, expected[name].shape, f"{what}: {name}", hint)
            expect_close(value, expected[name], f"{what}: {name}", hint)
        mm, mv = mm_ret.value, mv_ret.value


@check("batch_norm.moving_average", "batch_norm", 2,
       "training: exact moving averages over several steps (momentum 0.9, d2l convention)", hidden=True)
def moving_average(student):
    """Guards the moving statistics: after each of three batches (2-D and 4-D, starting from
    zeros/ones), moving = 0.9 * moving + 0.1 * batch statistic, with the biased variance.
    The returned statistics are fed back in, as BatchNorm does. PyTorch's convention
    (0.1 * moving + 0.9 * batch) or an unbiased moving variance miss by > 1e-2."""
    b2 = [oracle.sample((8, 3), seed=30 + k, scale=[1.0, 2.0, 0.5], shift=[1.0, -2.0, 3.0]) for k in range(3)]
    steps(student, b2, MOMENTUM, zeros_ones(3, 2))
    b4 = [oracle.sample((2, 3, 3, 4), seed=40 + k, scale=[2.0, 0.5, 1.0], shift=[1.0, -3.0, 0.5]) for k in range(3)]
    steps(student, b4, MOMENTUM, zeros_ones(3, 4))


@check("batch_norm.momentum_argument", "batch_norm", 1,
       "training: the momentum argument is used (values other than 0.9)", hidden=True)
def momentum_argument(student):
    """Guards that momentum is a parameter, not a constant: two steps with momentum 0.6
    (4-D) and one with 0.25 (2-D), from non-trivial moving statistics. A value the diagnosis
    puts down to a mistake that is not about momentum (e.g. an unbiased variance) is left to
    the checks about it."""
    b4 = [oracle.sample((2, 3, 3, 4), seed=50 + k, scale=[2.0, 0.5, 1.0], shift=[1.0, -3.0, 0.5]) for k in range(2)]
    steps(student, b4, 0.6, moving(4), elsewhere=diagnosis.NOT_ABOUT_MOMENTUM)
    steps(student, [oracle.sample((8, 3), seed=55, scale=[1.0, 2.0, 0.5], shift=[1.0, -2.0, 3.0])], 0.25, moving(2),
          elsewhere=diagnosis.NOT_ABOUT_MOMENTUM)


@check("batch_norm.moving_stats_detached", "batch_norm", 1,
       "training: the returned moving statistics carry no autograd history", hidden=True)
def moving_stats_detached(student):
    """Guards memory and correctness in training loops: the moving statistics are running
    numbers, not part of the model's graph. Computed from a mean of X that requires grad,
    they must be detached (``mean.detach()``, or updated under ``torch.no_grad()``);
    otherwise each step's graph hangs on to all the previous ones and memory grows."""
    for X, gamma, beta in ((X2, GAMMA2, BETA2), (X4, GAMMA4, BETA4)):
        mm, mv = zeros_ones(X.shape[1], X.dim())
        answer = call_batch_norm(student, True, X, gamma, beta, mm, mv, grad_args=[1, 2, 3],
                                 grad_output=torch.ones(X.shape), out_index=0)
        _, new_mm, new_mv = triple(answer["out"], situation(True, X) + ", X requires grad")
        for value, name, old in ((new_mm, "moving_mean", mm), (new_mv, "moving_var", mv)):
            expect(tuple(value.value.shape) != tuple(old.shape) or not torch.equal(value.value, old),
                   f"batch_norm ({situation(True, X)}): the returned {name} is the one passed in, unchanged, so "
                   f"there is no update whose autograd history could be checked. Hint: in training mode return "
                   f"momentum * moving + (1 - momentum) * batch statistic.")
            expect(not (value.requires_grad or value.grad_fn),
                   f"batch_norm ({situation(True, X)}, X requires grad): the returned {name} carries autograd "
                   f"history (requires_grad={value.requires_grad}, grad_fn set={value.grad_fn}); expected a plain "
                   f"tensor. Hint: update it from mean.detach() / var.detach() (or under torch.no_grad()), "
                   f"or every training step keeps the previous steps' graphs alive.")


def judge_gradients(what, case, y, grads, outputs_at):
    """Judge (dX, dgamma, dbeta) for a training-mode forward that returned ``y``: against autograd
    of the formula the forward actually computed (the right one, or the known mistake the
    diagnosis names: that mistake is the forward checks' business, not this one's); a forward
    no known formula explains is judged by finite differences of the student's own output.
    Returns a note for the student, or ''. Tolerance atol 1e-4 + rtol 1e-3."""
    for got, name in zip(grads, ("X", "gamma", "beta")):
        if got is None:
            raise Fail(f"{what} w.r.t. {name}: none arrived. Hint: Y = gamma * X_hat + beta must use the "
                       f"gamma and beta passed in (not a copy or .data), and X_hat must come from X.")
    values = [tensor(got, f"{what} w.r.t. {name}") for got, name in zip(grads, ("X", "gamma", "beta"))]
    expect_attempted(y, case.X, f"{what}: output Y")
    base = diagnosis.forward_mistake(case, y)
    if base and base[0] in diagnosis.NO_BATCH_STATISTICS:
        raise Fail(f"{what}: the output is not normalised with the batch statistics "
                   f"({diagnosis.MISTAKES[base[0]].format(**diagnosis.words(case))}), so there is no gradient through "
                   f"them to check. Hint: " + diagnosis.formula(case, "Y") + ".")
    if base is None:
        expect_finite(y, f"{what}: output Y")
        found = diagnosis.numeric_mismatch(outputs_at, case.X, case.gamma, case.beta, case.grad_output, values)
        if found:
            label, analytic, numeric = found
            raise Fail(f"{what}: along {label}, your gradients give a rate of change of sum(g * Y) of {analytic:.6g}, "
                       f"but your own output changes at the rate {numeric:.6g} (finite differences). Hint: the gradient "
                       f"must be the derivative of what your code computes; "
                       + diagnosis.formula(case, "dX") + ".")
        return "gradients agree with finite differences of your own output"
    expected = diagnosis.compute(case, base)
    for value, quantity, name in zip(values, ("dX", "dgamma", "dbeta"), ("X", "gamma", "beta")):
        expect_close(value, expected[quantity], f"{what} w.r.t. {name}",
                     diagnosis.hint(case, quantity, value, rtol=1e-3, atol=1e-4, base=base), rtol=1e-3, atol=1e-4)
    return (f"gradients right for what your forward pass computes (with {diagnosis.NAMES[base[0]]}, a mistake "
            f"the checks of the forward pass judge)") if base else ""


@check("batch_norm.gradient_through_stats", "batch_norm", 2,
       "training: gradients flow through the batch mean and variance", hidden=True)
def gradient_through_stats(student):
    """Guards backpropagation through batch norm: dL/dX has three paths (directly, through
    the mean, through the variance), so X_hat must be built from the batch statistics
    WITH their graph (or a hand-written backward must have all three). Compared with
    autograd in float64 of the formula the forward pass computed (so a mistake in the
    forward pass is not counted here): dX, dgamma, dbeta, atol 1e-4 + rtol 1e-3."""
    notes = []
    for X, gamma, beta, seed in ((X2, GAMMA2, BETA2, 60), (X4, GAMMA4, BETA4, 61)):
        g = oracle.sample(tuple(X.shape), seed=seed)
        mm, mv = zeros_ones(X.shape[1], X.dim())
        answer = call_batch_norm(student, True, X, gamma, beta, mm, mv, grad_args=[1, 2, 3], grad_output=g, out_index=0)
        what = f"batch_norm ({situation(True, X)}): gradient"
        Y, _, _ = triple(answer["out"], situation(True, X))
        y = expect_shape(Y, X.shape, f"batch_norm ({situation(True, X)}): Y")
        if answer["grads"] == "no-graph":
            raise Fail(f"{what}: Y does not require grad although X, gamma and beta do. "
                       f"Hint: do not compute Y under torch.no_grad() or from X.detach() / .data.")
        case = diagnosis.Case(True, X, gamma, beta, mm, mv, EPS, MOMENTUM, grad_output=g)

        def outputs_at(points, mm=mm, mv=mv):
            return [tensor(run(student, True, Xp, gp, bp, mm, mv)[0], "batch_norm: Y") for Xp, gp, bp in points]
        notes.append(judge_gradients(what, case, y, answer["grads"], outputs_at))
    return "; ".join(sorted({n for n in notes if n}))


@check("batch_norm.predict_uses_moving_stats", "batch_norm", 2,
       "prediction: normalises with the moving statistics and returns them unchanged", hidden=True)
def predict_uses_moving_stats(student):
    """Guards prediction mode: X_hat = (X - moving_mean) / sqrt(moving_var + eps) with the
    moving statistics passed in (not the batch's), and the moving statistics come back
    exactly as they went in (prediction must not change the model's state)."""
    for X, gamma, beta in ((X2, GAMMA2, BETA2), (X4, GAMMA4, BETA4)):
        mm, mv = moving(X.dim())
        Y, mm_ret, mv_ret = run(student, False, X, gamma, beta, mm, mv)
        what = f"batch_norm ({situation(False, X)})"
        y = expect_shape(Y, X.shape, f"{what}: Y")
        case = diagnosis.Case(False, X, gamma, beta, mm, mv, EPS, MOMENTUM)
        expect_close(y, diagnosis.compute(case)["Y"], f"{what}: Y", diagnosis.hint(case, "Y", y))
        for got, given, name in ((mm_ret, mm, "moving_mean"), (mv_ret, mv, "moving_var")):
            value = tensor(got, f"{what}: returned {name}")
            expect_close(value, given, f"{what}: returned {name}", diagnosis.hint(
                case, name, value, rtol=0, atol=1e-7, otherwise="Hint: prediction mode must return the moving "
                "statistics unchanged; only training updates them."), rtol=0, atol=1e-7)


@check("batch_norm.predict_independent_of_batch", "batch_norm", 1,
       "prediction: a sample's output does not depend on the rest of the batch", hidden=True)
def predict_independent_of_batch(student):
    """Guards the point of prediction mode: the output for one sample is the same whether it
    is predicted alone (a batch of 1) or together with others (atol 1e-6)."""
    for X, gamma, beta, i in ((X2, GAMMA2, BETA2, 3), (X4, GAMMA4, BETA4, 1)):
        mm, mv = moving(X.dim())
        Y_all, _, _ = run(student, False, X, gamma, beta, mm, mv)
        one = X[i:i + 1].clone()
        Y_one, _, _ = run(student, False, one, gamma, beta, mm, mv)
        what = f"batch_norm ({situation(False, X)})"
        y_all = expect_shape(Y_all, X.shape, f"{what}: Y")
        expect_attempted(y_all, X, f"{what}: Y")
        row = y_all[i:i + 1]
        case = diagnosis.Case(False, X, gamma, beta, mm, mv, EPS, MOMENTUM)
        expect_close(Y_one, row, f"batch_norm (prediction, sample {i} alone vs in its batch): Y", diagnosis.hint(
            case, "Y", y_all, otherwise="Hint: a prediction must not depend on which other samples share the "
            "batch; use the moving statistics, not the batch's."), rtol=0, atol=1e-6)

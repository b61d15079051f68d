"""Diagnosis: which well-known mistake explains a wrong batch-norm answer.

Every check of ``batch_norm`` and ``BatchNorm`` takes its hint from here, chosen
from the answer itself rather than fixed per check. ``compute`` is the right
computation of ``autograder.oracle`` (float64; autograd for gradients) with a set
of ``MISTAKES`` switched on; ``identify`` tries each single mistake that could
change the quantity in question (for gradients: each on top of the mistake already
found in the forward pass) and returns the first that reproduces the answer within
the check's tolerance. ``hint`` words it; when nothing matches it says so, reads
off a wrong eps or momentum where it can, and gives the formula.

A ``Case`` is what one call of ``batch_norm`` (or one forward of ``BatchNorm``) was
given. Quantities: "Y", "moving_mean", "moving_var" (what the call returned) and
"dX", "dgamma", "dbeta" (gradients of sum(Y * grad_output)).
"""
import dataclasses

import torch

from ..student_side.base import backward
from . import batch_norm as oracle


@dataclasses.dataclass(frozen=True)
class Case:
    """The inputs of one call. Tensors as given (any float dtype), shapes (N, C) or (N, C, H, W)
    for X and (1, C) or (1, C, 1, 1) for the others. ``module``: the call is BatchNorm's forward,
    whose eps (1e-5) and momentum (0.9) are its own, not arguments."""
    training: bool
    X: torch.Tensor
    gamma: torch.Tensor
    beta: torch.Tensor
    moving_mean: torch.Tensor
    moving_var: torch.Tensor
    eps: float = 1e-5
    momentum: float = 0.9
    module: bool = False
    grad_output: torch.Tensor = None


# ---- the family of wrong formulas: key -> what a TA would tell the student ----

MISTAKES = {
    "channel_mixing": "the statistics mix channels: X.reshape(-1, C) of an (N, C, H, W) tensor does not give one "
                      "channel per column, because C is not the last dim; move C last first "
                      "(X.permute(0, 2, 3, 1).reshape(-1, C)) or average over dims (0, 2, 3)",
    "channel_mixing_affine": "the statistics mix channels: X.reshape(-1, C) of an (N, C, H, W) tensor does not give "
                             "one channel per column, because C is not the last dim; move C last first "
                             "(X.permute(0, 2, 3, 1).reshape(-1, C)) or average over dims (0, 2, 3)",
    "stats_dim0": "the statistics are taken over dim 0 only (one per pixel); for 4-D input average over dims "
                  "(0, 2, 3), one mean and one variance per channel",
    "stats_all": "the statistics are taken over the whole tensor; they are per feature/channel (over {dims})",
    "stats_sample": "the statistics are taken per sample, over each example's own values (as layer norm does); "
                    "batch norm averages over the batch: {dims}",
    "unbiased_var": "the variance is the UNBIASED one (divided by m - 1, torch.var's default); batch norm uses the "
                    "biased variance (divide by m: unbiased=False, or ((X - mean) ** 2).mean(...)), for normalising "
                    "and for moving_var",
    "moving_var_unbiased": "moving_var averages the UNBIASED variance (as PyTorch's running_var does); d2l's moving_var "
                           "averages the same biased variance used for normalising",
    "eps_fixed": "eps is ignored (a fixed 1e-5?): use the eps argument you are given",
    "eps_outside": "eps is added outside the square root; it belongs inside: sqrt({var} + eps)",
    "no_eps": "eps is missing in {mode} mode: divide by sqrt({var} + eps), not sqrt({var}) (a tiny or zero "
              "variance would blow up)",
    "no_sqrt": "the square root is missing: divide by sqrt({var} + eps), the standard deviation, not the variance",
    "not_centred": "the mean is not subtracted: X_hat = (X - {mean}) / sqrt({var} + eps)",
    "swapped": "gamma and beta are swapped: Y = gamma * X_hat + beta (gamma scales, beta shifts)",
    "no_affine": "gamma and beta are not applied: Y = gamma * X_hat + beta",
    "not_normalised": "the output is not normalised at all (X_hat = X?)",
    "predict_batch_stats": "{predict} this is normalised with the BATCH statistics; use {moving}: {switch}",
    "train_moving_stats": "in training mode this is normalised with the moving statistics; training normalises with "
                          "the batch's own mean and variance",
    "train_updated_moving_stats": "in training mode this is normalised with the moving statistics after this batch's "
                                  "update (momentum * moving + (1 - momentum) * batch); training normalises with the "
                                  "batch's own mean and variance, and only stores the updated moving ones",
    "predict_updates": "{predict} the moving statistics changed; return them unchanged (only training updates them)",
    "never_updated": "it did not change: in training mode compute moving = momentum * moving + (1 - momentum) * batch "
                     "and return the new value{store}",
    "momentum_reversed": "the update keeps (1 - momentum) of the OLD value and weighs the NEW batch by momentum, "
                         "PyTorch's convention (its momentum=0.1 is the weight of the new batch); d2l's momentum keeps "
                         "`momentum` of the OLD value: moving = momentum * moving + (1 - momentum) * batch, with "
                         "momentum=0.9 in BatchNorm",
    "momentum_01": "the update keeps only 0.1 of the OLD value: 0.1 is PyTorch's momentum, for PyTorch's formula; "
                   "with d2l's moving = momentum * moving + (1 - momentum) * batch, BatchNorm uses momentum=0.9",
    "momentum_fixed": "the momentum argument is ignored (a fixed 0.9?): use the momentum you are given in "
                      "moving = momentum * moving + (1 - momentum) * batch",
    "detach_mean": "the gradient skips the path through the batch mean: do not detach the mean used for X_hat "
                   "(detach only what becomes a moving statistic)",
    "detach_var": "the gradient skips the path through the batch variance: do not detach the variance used for "
                  "X_hat (detach only what becomes a moving statistic)",
    "detach_both": "the gradient treats the batch mean and variance as constants; it also flows through both "
                   "(autograd does this when X_hat is built from them; a hand-written backward needs "
                   "dX = gamma / sqrt(var + eps) * (g - mean(g) - X_hat * mean(g * X_hat)))",
}

# short names, for notes that mention a mistake in passing
NAMES = {"channel_mixing": "channels mixed by a reshape", "channel_mixing_affine": "channels mixed by a reshape",
         "stats_dim0": "statistics over dim 0 only", "stats_all": "statistics over the whole tensor",
         "stats_sample": "per-sample statistics", "unbiased_var": "the unbiased variance",
         "moving_var_unbiased": "an unbiased moving variance", "eps_fixed": "a fixed eps",
         "eps_outside": "eps outside the square root", "no_eps": "no eps", "no_sqrt": "no square root",
         "not_centred": "the mean not subtracted", "swapped": "gamma and beta swapped",
         "no_affine": "no gamma and beta", "not_normalised": "no normalisation",
         "predict_batch_stats": "batch statistics in prediction", "train_moving_stats": "moving statistics in training",
         "train_updated_moving_stats": "updated moving statistics in training",
         "predict_updates": "updates in prediction", "never_updated": "no update",
         "momentum_reversed": "PyTorch's momentum convention", "momentum_01": "momentum 0.1",
         "momentum_fixed": "a fixed momentum", "detach_mean": "the mean detached", "detach_var": "the variance detached",
         "detach_both": "both statistics detached"}
# mistakes after which Y has no path through the batch statistics to check a gradient of
NO_BATCH_STATISTICS = frozenset({"not_normalised", "train_moving_stats", "train_updated_moving_stats"})

# which mistakes can change which quantity, in the order they are tried (most specific first)
FORWARD = ("channel_mixing", "channel_mixing_affine", "stats_dim0", "stats_all", "stats_sample", "unbiased_var",
           "eps_fixed", "eps_outside", "no_eps", "no_sqrt", "not_centred", "swapped", "no_affine", "not_normalised",
           "predict_batch_stats", "train_moving_stats", "train_updated_moving_stats")
MOVING = ("never_updated", "predict_updates", "predict_batch_stats", "channel_mixing", "stats_dim0", "stats_all",
          "stats_sample", "unbiased_var", "moving_var_unbiased", "momentum_reversed", "momentum_01", "momentum_fixed")
GRADIENT = ("detach_mean", "detach_var", "detach_both")
FAMILY = {"Y": FORWARD, "moving_mean": MOVING, "moving_var": MOVING, "dX": GRADIENT, "dgamma": GRADIENT,
          "dbeta": GRADIENT}

# mistakes a check about eps / about the momentum leaves to other checks: they still show
# whether eps or the momentum is used right (an output not normalised, or statistics never
# updated, do not, so they stay that check's failure)
NOT_ABOUT_EPS = frozenset(FORWARD) - {"eps_fixed", "eps_outside", "no_eps", "no_sqrt", "not_normalised"}
NOT_ABOUT_MOMENTUM = frozenset(MOVING) - {"momentum_fixed", "momentum_reversed", "momentum_01", "never_updated"}

FOUR_D_ONLY = {"channel_mixing", "channel_mixing_affine", "stats_dim0"}
TRAINING_ONLY = {"channel_mixing", "channel_mixing_affine", "stats_dim0", "stats_all", "stats_sample", "unbiased_var",
                 "moving_var_unbiased", "train_moving_stats", "train_updated_moving_stats", "never_updated", "momentum_reversed", "momentum_01",
                 "momentum_fixed", "detach_mean", "detach_var", "detach_both"}
PREDICTION_ONLY = {"predict_batch_stats", "predict_updates"}


def applies(case, mistakes):
    """Whether every mistake in ``mistakes`` can happen in this case (and makes a difference)."""
    for key in mistakes:
        if key in FOUR_D_ONLY and case.X.dim() != 4:
            return False
        if key in TRAINING_ONLY and not case.training or key in PREDICTION_ONLY and case.training:
            return False
        if key == "eps_fixed" and (case.module or case.eps == 1e-5):
            return False
        if key == "momentum_fixed" and (case.module or case.momentum == 0.9):
            return False
        if key == "momentum_01" and case.momentum in (0.1, 0.9):   # at 0.9 it is momentum_reversed
            return False
    return True


def frame(X, mistakes):
    """(tensor the statistics are taken of, dims, map back to X's shape): X itself, or the
    channel-mixing ``X.reshape(-1, C)``."""
    if mistakes & {"channel_mixing", "channel_mixing_affine"}:
        return X.reshape(-1, X.shape[1]), (0,), lambda t: t.reshape(X.shape)
    dims = oracle.stat_dims(X)
    if "stats_dim0" in mistakes:
        dims = (0,)
    elif "stats_all" in mistakes:
        dims = tuple(range(X.dim()))
    elif "stats_sample" in mistakes:
        dims = tuple(range(1, X.dim()))
    return X, dims, lambda t: t


def compute(case, mistakes=()):
    """{"Y", "moving_mean", "moving_var"} (and "dX", "dgamma", "dbeta" when the case has a
    grad_output) of the right formulas with ``mistakes`` made, in float64; None if one of them
    does not apply to the case."""
    S = frozenset(mistakes)
    if not applies(case, S):
        return None
    grad = case.grad_output is not None
    X, gamma, beta = (t.detach().double().requires_grad_(grad) for t in (case.X, case.gamma, case.beta))
    mm, mv = case.moving_mean.detach().double(), case.moving_var.detach().double()
    eps = 1e-5 if "eps_fixed" in S else case.eps
    Xf, dims, back = frame(X, S)
    mean = Xf.mean(dim=dims, keepdim=True)
    var = ((Xf - mean) ** 2).mean(dim=dims, keepdim=True)
    m = Xf.numel() // mean.numel()
    unbiased = var * m / (m - 1)
    use_batch = case.training != bool(S & {"train_moving_stats", "train_updated_moving_stats", "predict_batch_stats"})
    if use_batch:
        mu = mean.detach() if S & {"detach_mean", "detach_both"} else mean
        sigma2 = unbiased if "unbiased_var" in S else var
        sigma2 = sigma2.detach() if S & {"detach_var", "detach_both"} else sigma2
        Xn = Xf
    else:
        mu, sigma2, Xn, back = mm, mv, X, (lambda t: t)
        if "train_updated_moving_stats" in S:   # the statistics this call returns, used to normalise
            k = case.momentum
            mu = k * mm + (1 - k) * mean.detach().reshape(mm.shape)
            sigma2 = k * mv + (1 - k) * var.detach().reshape(mv.shape)
    centred = Xn if "not_centred" in S else Xn - mu
    if "not_normalised" in S:
        X_hat = Xn
    elif "no_eps" in S:
        X_hat = centred / torch.sqrt(sigma2)
    elif "eps_outside" in S:
        X_hat = centred / (torch.sqrt(sigma2) + eps)
    elif "no_sqrt" in S:
        X_hat = centred / (sigma2 + eps)
    else:
        X_hat = centred / torch.sqrt(sigma2 + eps)
    g, b = gamma, beta
    if "channel_mixing_affine" in S:   # gamma and beta applied in the (-1, C) frame, as CS231n's code does
        g, b = gamma.reshape(1, -1), beta.reshape(1, -1)
    else:
        X_hat = back(X_hat)
    Y = b * X_hat + g if "swapped" in S else X_hat if "no_affine" in S else g * X_hat + b
    Y = back(Y)
    out = {"Y": Y.detach()}
    # moving statistics
    if case.training or S & {"predict_updates", "predict_batch_stats"}:
        batch_mean = mean.detach().reshape(mm.shape) if Xf is not X else mean.detach()
        batch_var = (unbiased if S & {"unbiased_var", "moving_var_unbiased"} else var).detach()
        batch_var = batch_var.reshape(mv.shape) if Xf is not X else batch_var
        k = 0.9 if "momentum_fixed" in S else 0.1 if "momentum_01" in S else case.momentum
        if "never_updated" in S:
            out["moving_mean"], out["moving_var"] = mm, mv
        elif "momentum_reversed" in S:
            out["moving_mean"], out["moving_var"] = (1 - k) * mm + k * batch_mean, (1 - k) * mv + k * batch_var
        else:
            out["moving_mean"], out["moving_var"] = k * mm + (1 - k) * batch_mean, k * mv + (1 - k) * batch_var
    else:
        out["moving_mean"], out["moving_var"] = mm, mv
    if grad:
        backward(Y, case.grad_output.double())
        out.update({name: (t.grad if t.grad is not None else torch.zeros_like(t)).detach()
                    for name, t in (("dX", X), ("dgamma", gamma), ("dbeta", beta))})
    return out


def close(got, expected, rtol, atol):
    """Same shape, finite, and within atol + rtol * |expected| everywhere."""
    return (tuple(got.shape) == tuple(expected.shape) and bool(torch.isfinite(got).all())
            and bool(((got.double() - expected).abs() <= atol + rtol * expected.abs()).all()))


def attempt(case, mistakes):
    """``compute``, or None where the formula cannot even be evaluated for these inputs (e.g. a
    student's moving statistics of a shape no broadcasting fits)."""
    try:
        return compute(case, mistakes)
    except (RuntimeError, ValueError):
        return None


def identify(case, quantity, got, rtol=1e-4, atol=1e-5, base=()):
    """The key of the first mistake in ``FAMILY[quantity]`` (made on top of ``base``) whose
    ``quantity`` matches ``got``, or None. A candidate that equals the right answer (with
    ``base``) explains nothing and is skipped."""
    right = attempt(case, base)
    if right is None:
        return None
    for key in FAMILY[quantity]:
        if key in base:
            continue
        candidate = attempt(case, tuple(base) + (key,))
        if candidate is None or close(candidate[quantity], right[quantity], rtol, atol):
            continue
        if close(got, candidate[quantity], rtol, atol):
            return key
    return None


def forward_mistake(case, y, rtol=1e-4, atol=1e-5):
    """What the forward pass computed: () if Y is right, (key,) for a known mistake, None if unknown."""
    right = attempt(case, ())
    if right is None:
        return None
    if close(y, right["Y"], rtol, atol):
        return ()
    key = identify(case, "Y", y, rtol, atol)
    return (key,) if key else None


def words(case):
    """The words a message about this case uses."""
    four = case.X.dim() == 4
    return {
        "dims": "dims (0, 2, 3)" if four else "dim 0",
        "var": "var" if case.training else "moving_var",
        "mean": "mean" if case.training else "moving_mean",
        "mode": "training" if case.training else ("eval" if case.module else "prediction"),
        "predict": "after model.eval()," if case.module else "in prediction mode (is_training=False)",
        "moving": "the stored moving statistics" if case.module else "the moving_mean and moving_var passed in",
        "switch": "pass self.training as is_training (model.eval() sets it to False), not torch.is_grad_enabled()"
        if case.module else "switch on the is_training argument, not on torch.is_grad_enabled()",
        "store": " (BatchNorm must store what batch_norm returns, e.g. Y, self.moving_mean, self.moving_var = "
                 "batch_norm(...))" if case.module else "",
    }


def formula(case, quantity):
    """The right formula for ``quantity``, in words."""
    if quantity == "Y":
        if not case.training:
            return "Y = gamma * (X - moving_mean) / sqrt(moving_var + eps) + beta"
        return ("Y = gamma * (X - mean) / sqrt(var + eps) + beta, with the batch's mean and biased variance per "
                f"{'channel, over dims (0, 2, 3)' if case.X.dim() == 4 else 'feature, over dim 0'}")
    if quantity in ("moving_mean", "moving_var"):
        if not case.training:
            return "prediction returns moving_mean and moving_var unchanged"
        return ("moving_mean = momentum * moving_mean + (1 - momentum) * mean, moving_var = momentum * moving_var + "
                "(1 - momentum) * var, with the batch's biased variance (d2l's convention"
                f"{', momentum=0.9 in BatchNorm' if case.module else ''})")
    if quantity == "dX":
        return ("dX = gamma / sqrt(var + eps) * (g - mean(g) - X_hat * mean(g * X_hat)), means over the batch (and "
                "spatial) dims: autograd gives it when X_hat is built from the batch mean and variance with their graph")
    return "dgamma = sum of g * X_hat and dbeta = sum of g over the batch (and spatial) dims"


def estimate(case, quantity, got):
    """A wrong eps or momentum value read off the answer, in words, or ''."""
    got = got.double()
    right = attempt(case, ())
    if right is None or tuple(got.shape) != tuple(right[quantity].shape) or not bool(torch.isfinite(got).all()):
        return ""
    X = case.X.double()
    if quantity == "Y" and bool((case.gamma.double().abs() > 1e-3).all()):
        mean, var = oracle.batch_stats(X) if case.training else (case.moving_mean.double(), case.moving_var.double())
        X_hat = (got - case.beta.double()) / case.gamma.double()
        ok = X_hat.abs() > 1e-2
        if not bool(ok.any()):
            return ""
        eps = (((X - mean) / torch.where(ok, X_hat, torch.ones_like(X_hat))) ** 2 - var)[ok]
        value = float(eps.median())
        if value > 0 and bool(((eps - value).abs() <= 1e-2 * abs(value) + 1e-7).all()) and \
                abs(value - case.eps) > 1e-2 * case.eps:
            return f"; eps looks like {value:.3g} instead of {case.eps:g}"
    if quantity in ("moving_mean", "moving_var") and case.training:
        old = (case.moving_mean if quantity == "moving_mean" else case.moving_var).double()
        batch = (right[quantity] - case.momentum * old) / (1 - case.momentum)
        gap = old - batch
        ok = gap.abs() > 1e-3
        if not bool(ok.any()):
            return ""
        kept = ((got - batch) / torch.where(ok, gap, torch.ones_like(gap)))[ok]
        value = float(kept.median())
        if bool(((kept - value).abs() <= 1e-3).all()):
            return f"; the update keeps {value:.3g} of the old value where it should keep {case.momentum:g}"
    return ""


def hint(case, quantity, got, rtol=1e-4, atol=1e-5, base=(), otherwise=None):
    """'Hint: ...' naming the mistake that explains ``got`` (the student's ``quantity``); if none
    does, ``otherwise`` when given, else a sentence saying so with the formula."""
    got = got.double()
    key = identify(case, quantity, got, rtol, atol, base)
    if key:
        return "Hint: " + MISTAKES[key].format(**words(case)) + "."
    if otherwise is not None:
        return otherwise
    return (f"Hint: none of the usual mistakes the grader knows explains this{estimate(case, quantity, got)}; "
            f"the formula: {formula(case, quantity)}.")


# ---- gradients of a forward pass no known formula explains ----

def directions(X, gamma, beta, seed=97):
    """(label, dX direction, dgamma direction, dbeta direction) along which a gradient is checked
    by finite differences: the shift of every feature/channel (a right batch norm does not change),
    the scaling of X about its batch mean (nor this, up to eps), a random direction, and gamma
    and beta moved by one."""
    X = X.double()
    mean, _ = oracle.batch_stats(X)
    zero_x, zero_p = torch.zeros_like(X), torch.zeros_like(gamma, dtype=torch.float64)
    return (("a shift of each feature/channel of X", torch.ones_like(X), zero_p, zero_p),
            ("a scaling of X about its batch mean", X - mean, zero_p, zero_p),
            ("a random direction in X", oracle.sample(tuple(X.shape), seed=seed).double(), zero_p, zero_p),
            ("gamma", zero_x, torch.ones_like(zero_p), zero_p),
            ("beta", zero_x, zero_p, torch.ones_like(zero_p)))


def numeric_mismatch(outputs_at, X, gamma, beta, grad_output, grads, h=1e-2, rtol=1e-3):
    """Compare a student's gradients with how the student's own output changes (central finite
    differences of sum(Y * grad_output), step ``h``, float32 inputs as the checks send them).

    ``outputs_at(points)`` returns the outputs Y for a list of (X, gamma, beta); ``grads`` is
    (dX, dgamma, dbeta). Returns (direction label, analytic, numeric) for the first direction
    where |analytic - numeric| > rtol * |grad| * |direction| (+1e-4), else None."""
    X, gamma, beta, g = (t.double() for t in (X, gamma, beta, grad_output))
    dirs = directions(X, gamma, beta)
    points = []
    for _, vx, vg, vb in dirs:
        for sign in (1.0, -1.0):
            points.append(((X + sign * h * vx).float(), (gamma + sign * h * vg.reshape(gamma.shape)).float(),
                           (beta + sign * h * vb.reshape(beta.shape)).float()))
    ys = outputs_at(points)
    dX, dgamma, dbeta = (t.double() for t in grads)
    for k, (label, vx, vg, vb) in enumerate(dirs):
        numeric = float((g * (ys[2 * k].double() - ys[2 * k + 1].double())).sum()) / (2 * h)
        analytic = float((dX * vx).sum() + (dgamma.reshape(vg.shape) * vg).sum() + (dbeta.reshape(vb.shape) * vb).sum())
        scale = float(torch.cat([dX.flatten(), dgamma.flatten(), dbeta.flatten()]).norm()) * \
            float(torch.cat([vx.flatten(), vg.flatten(), vb.flatten()]).norm())
        if abs(analytic - numeric) > rtol * scale + 1e-4:
            return label, analytic, numeric
    return None

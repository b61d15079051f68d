"""Public checks of ``BatchNorm(num_features, num_dims)``, and how the grader finds its tensors.

The module's learnable ``gamma`` (ones) and ``beta`` (zeros) must be
``nn.Parameter``s of shape (1, C) for ``num_dims == 2`` and (1, C, 1, 1) otherwise.
Its moving statistics may be registered buffers, plain tensor attributes or frozen
parameters (``requires_grad=False``), under any name: the grader looks for names
containing "mean" / "var", then for the tensors of the right size that start as
zeros / ones, then for the two that a training-mode forward changes. Tolerance for
values: atol 1e-5 + rtol 1e-4·|expected| against the float64 oracle; a wrong value
is diagnosed by ``autograder.reference.diagnosis``.
"""
import torch

from ..reference import batch_norm as oracle, diagnosis
from ..core.check import Fail, StudentError, check, expect, expect_close, expect_finite, expect_shape
from ..core.student import Returned
from .batch_norm import X2, X4

CASES = ((3, 2), (3, 4))   # (num_features, num_dims) for X2 (8, 3) and X4 (2, 3, 3, 4)


def name_of(num_features, num_dims):
    return f"BatchNorm({num_features}, {num_dims})"


def build(student, num_features, num_dims, ops, seed=0):
    """Build the student's BatchNorm under a fixed seed and run ops; returns the op results.
    An exception in the student's code is reported with the module it happened in."""
    try:
        return student.probe("module", name="BatchNorm", ctor_args=[num_features, num_dims], seed=seed, ops=ops)
    except StudentError as exc:
        raise StudentError(f"{name_of(num_features, num_dims)}: {exc}") from None


def last_part(name):
    return name.rsplit(".", 1)[-1].lower()


def pick(found, role, numel):
    """The one name in ``found`` (name -> Returned) that plays ``role`` ("mean"/"var", "gamma"/"beta")."""
    words = {"mean": ("mean",), "var": ("var",), "gamma": ("gamma", "weight"), "beta": ("beta", "bias")}[role]
    named = [n for n in found if any(w in last_part(n) for w in words)]
    sized = [n for n in named if isinstance(found[n], Returned) and found[n].value.numel() == numel]
    for group in (sized, named):
        preferred = [n for n in group if any(w in last_part(n) for w in ("moving", "running"))] or group
        if len(preferred) == 1:
            return preferred[0]
    return None


def pick_by_value(found, numel, fill):
    """Fallback: the one tensor of ``numel`` values all equal to ``fill`` (the initial value)."""
    hits = [n for n, v in found.items() if isinstance(v, Returned) and v.value.numel() == numel
            and bool((v.value.double() == fill).all())]
    return hits[0] if len(hits) == 1 else None


def empty(state, num_features, num_dims):
    """Fail with "not implemented yet" when the module holds no tensors at all (an untouched stub)."""
    if not (state["params"] or state["buffers"] or state["tensor_attrs"]):
        raise Fail(f"{name_of(num_features, num_dims)}: not implemented yet (the module holds no parameters "
                   f"or tensors; __init__ should create gamma, beta and the moving statistics).")


def delegation_note(state):
    """A sentence for messages about a module that is, or holds, PyTorch's nn.BatchNorm; else ''.
    (``torch_norm_layers``: the names of its submodules that are PyTorch batch/instance norm
    layers, "" for the module itself.)"""
    layers = state.get("torch_norm_layers") or []
    if not layers:
        return ""
    where = "is PyTorch's own nn.BatchNorm (a subclass)" if "" in layers else \
        f"holds PyTorch's own nn.BatchNorm layer ({', '.join(layers)})"
    return (f" Your module {where}; this exercise asks for your own: gamma, beta and the moving statistics in "
            f"the module, forward() calling your batch_norm.")


def parameters(state, num_features, num_dims, strict=True):
    """(gamma name, beta name) among the module's parameters, or Fail with what is there.

    With ``strict=False`` (checks about something else), gamma/beta kept as plain tensor
    attributes are accepted too, so that mistake costs only the checks about parameters."""
    empty(state, num_features, num_dims)
    what = name_of(num_features, num_dims)
    params = state["params"]
    trainable = {n: v for n, v in params.items() if not isinstance(v, Returned) or v.requires_grad}
    gamma = pick(params, "gamma", num_features) or pick_by_value(trainable, num_features, 1.0) or \
        pick_by_value(params, num_features, 1.0)
    beta = pick(params, "beta", num_features) or pick_by_value(trainable, num_features, 0.0) or \
        pick_by_value(params, num_features, 0.0)
    if gamma is None or beta is None or gamma == beta:
        plain = [n for n in state["tensor_attrs"] if any(w in last_part(n) for w in ("gamma", "beta"))]
        if not strict:
            gamma, beta = pick(state["tensor_attrs"], "gamma", num_features), pick(state["tensor_attrs"], "beta", num_features)
            if gamma and beta:
                return gamma, beta
        hint = (f"Hint: {', '.join(plain)} {'is a plain tensor' if len(plain) == 1 else 'are plain tensors'}; "
                f"wrap in nn.Parameter(...) so the optimiser trains it and model.parameters() lists it.") if plain else \
            "Hint: self.gamma = nn.Parameter(torch.ones(shape)); self.beta = nn.Parameter(torch.zeros(shape))."
        raise Fail(f"{what}: expected learnable parameters gamma and beta among named_parameters(), "
                   f"found {sorted(params) or 'none'}. {hint}{delegation_note(state)}")
    return gamma, beta


def candidates(state):
    """Where moving statistics may live: tensor attributes, buffers and frozen parameters."""
    found = {**state["tensor_attrs"], **state["buffers"]}
    for n, v in state["params"].items():
        if isinstance(v, Returned) and not v.requires_grad:
            found.setdefault(n, v)
    return found


def pick_changed(found, after, num_features):
    """Behaviour: the two tensors of ``num_features`` values that a training-mode forward changed
    (``after`` is the state after it), as (mean, var): the variance is the one that starts at ones,
    or failing that the one that stays positive while the other does not."""
    later = candidates(after)
    changed = [n for n, v in found.items() if isinstance(v, Returned) and v.value.numel() == num_features
               and isinstance(later.get(n), Returned) and later[n].value.numel() == num_features
               and not torch.equal(later[n].value.reshape(-1), v.value.reshape(-1))]
    if len(changed) != 2:
        return None, None
    a, b = changed
    if bool((found[a].value == 1).all()) != bool((found[b].value == 1).all()):
        return (b, a) if bool((found[a].value == 1).all()) else (a, b)
    pos_a, pos_b = (bool((later[n].value > 0).all()) for n in (a, b))
    return (b, a) if pos_a and not pos_b else (a, b)


def moving_stats(state, num_features, num_dims, strict=True, after=None):
    """(moving mean name, moving var name) among buffers, tensor attributes and frozen
    parameters, or Fail. ``after``: the state after a training-mode forward, to find them by
    behaviour when names and initial values do not tell.

    With ``strict=False``, moving statistics wrongly made trainable nn.Parameters are accepted too."""
    empty(state, num_features, num_dims)
    what = name_of(num_features, num_dims)
    found = candidates(state)
    mean = pick(found, "mean", num_features) or pick_by_value(found, num_features, 0.0)
    var = pick(found, "var", num_features) or pick_by_value(found, num_features, 1.0)
    if (mean is None or var is None or mean == var) and after is not None:
        mean, var = pick_changed(found, after, num_features)
    if mean is None or var is None or mean == var:
        in_params = [n for n in state["params"] if any(w in last_part(n) for w in ("mean", "var"))]
        if not strict:
            mean, var = pick(state["params"], "mean", num_features), pick(state["params"], "var", num_features)
            if mean and var:
                return mean, var
        verb = "is a trainable nn.Parameter" if len(in_params) == 1 else "are trainable nn.Parameters"
        hint = (f"Hint: {', '.join(in_params)} {verb}; "
                f"moving statistics are not learned: keep them as plain tensors or register_buffer(...).") if in_params else \
            ("Hint: self.moving_mean = torch.zeros(shape); self.moving_var = torch.ones(shape) "
             "(or register_buffer).")
        raise Fail(f"{what}: could not find the moving mean and moving variance among its buffers and tensor "
                   f"attributes (found {sorted(found) or 'none'}). {hint}{delegation_note(state)}")
    return mean, var


def find_moving_stats(student, num_features, num_dims, state, strict=True):
    """``moving_stats`` on a fresh module's ``state``; if names and values do not tell, by behaviour
    (a training-mode forward on a fixed input; its failure only means behaviour cannot help)."""
    try:
        return moving_stats(state, num_features, num_dims, strict)
    except Fail as first:
        X = oracle.sample((8, num_features) if num_dims == 2 else (2, num_features, 3, 4), seed=13)
        try:
            after = build(student, num_features, num_dims, [forward_op(X), state_op()])[-1]
        except StudentError:
            raise first from None
        return moving_stats(state, num_features, num_dims, strict, after=after)


def state_op():
    return {"op": "state"}


def forward_op(X, **extra):
    return {"op": "forward", "x": X, **extra}


@check("BatchNorm.parameters_init", "BatchNorm", 1,
       "gamma (ones) and beta (zeros) are nn.Parameters of shape (1, C) or (1, C, 1, 1)")
def parameters_init(student):
    """Guards the learnable part of the layer: gamma starts at ones and beta at zeros, so a
    fresh layer just normalises; both are registered parameters (model.parameters() must
    list them for the optimiser) with the shape that broadcasts over (N, C) or (N, C, H, W)."""
    for num_features, num_dims in ((4, 2), (5, 4)):
        what = name_of(num_features, num_dims)
        (state,) = build(student, num_features, num_dims, [state_op()])
        gamma, beta = parameters(state, num_features, num_dims)
        shape = oracle.param_shape(num_features, num_dims)
        for name, fill in ((gamma, 1.0), (beta, 0.0)):
            value = state["params"][name]
            expect_shape(value, shape, f"{what}: parameter {name}",
                         "Hint: (1, C) when num_dims == 2, (1, C, 1, 1) otherwise, so it broadcasts over the input."
                         + delegation_note(state))
            expect(value.requires_grad, f"{what}: parameter {name} has requires_grad=False; it must be trainable.")
            expect_close(value, torch.full(shape, fill), f"{what}: initial {name}",
                         "Hint: gamma starts as ones and beta as zeros, so a new layer only normalises.", rtol=0, atol=0)


@check("BatchNorm.forward_train_shape", "BatchNorm", 1,
       "training-mode forward keeps the input's shape and normalises it (2-D and 4-D)")
def forward_train_shape(student):
    """Guards the forward pass in training mode (the default after construction): the
    output has the input's shape and equals (X - batch mean) / sqrt(batch var + 1e-5) per
    feature/channel (gamma ones, beta zeros)."""
    for (num_features, num_dims), X in zip(CASES, (X2, X4)):
        what = f"{name_of(num_features, num_dims)} forward (training mode, input {tuple(X.shape)})"
        (result,) = build(student, num_features, num_dims, [forward_op(X)])
        y = expect_shape(result["y"], X.shape, f"{what}: output",
                         "Hint: gamma, beta and the statistics must have shape (1, C) for num_dims == 2 and "
                         "(1, C, 1, 1) for 4, so they broadcast to the input's shape.")
        expect_finite(y, f"{what}: output")
        shape = oracle.param_shape(num_features, num_dims)
        case = diagnosis.Case(True, X, torch.ones(shape), torch.zeros(shape), torch.zeros(shape), torch.ones(shape),
                              module=True)
        expect_close(y, diagnosis.compute(case)["Y"], f"{what}: output", diagnosis.hint(case, "Y", y) + (
            "" if diagnosis.identify(case, "Y", y) else " A new module is in training mode (self.training is True): "
            "normalise with the batch statistics, eps=1e-5."))

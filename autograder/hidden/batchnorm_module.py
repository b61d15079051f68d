"""Hidden checks of ``BatchNorm(num_features, num_dims)``: state, modes, moving averages, gradients, from scratch.

The module keeps gamma/beta as parameters and the moving statistics as buffers,
plain attributes or frozen parameters (found by ``checks.batchnorm_module.moving_stats``); its mode
follows ``self.training`` (``train()`` / ``eval()``), NOT ``torch.is_grad_enabled()``;
eps = 1e-5 and momentum = 0.9 in d2l's convention (see ``autograder/oracle.py``).
The grader first asks a fresh module's state for its tensors' names and shapes
(once per submission and size, ``layout_of``); each check then builds a fresh
module (same seed) and sets gamma, beta or the moving statistics to non-trivial
values through those names, so each check is about one behaviour only. Tolerance for values:
atol 1e-5 + rtol 1e-4·|expected| against the float64 oracle unless stated; a wrong value is
diagnosed by ``autograder.reference.diagnosis`` (the same family of known mistakes as for batch_norm).
"""
import weakref

import torch

from ..reference import batch_norm as oracle, diagnosis
from ..core.check import Fail, check, expect, expect_close, expect_finite, expect_shape, tensor
from ..checks.batch_norm import BETA2, BETA4, GAMMA2, GAMMA4, X2, X4, expect_attempted
from ..checks.batchnorm_module import (CASES, build, candidates, find_moving_stats, forward_op, name_of, parameters,
                                       state_op)
from ..core.student import Returned
from .batch_norm import judge_gradients

EPS, MOMENTUM = 1e-5, 0.9
MOVING_MEAN = [0.5, -1.0, 2.0]
MOVING_VAR = [4.0, 0.25, 1.0]
EVAL_MOVING_VAR = [4.0, 0.25, 2e-3]   # a small one: eps left out or outside the sqrt in eval mode shows (0.25%)
INPUTS = {2: (X2, GAMMA2, BETA2), 4: (X4, GAMMA4, BETA4)}
CASES_AND_INPUTS = tuple((num_features, num_dims, INPUTS[num_dims][0]) for num_features, num_dims in CASES)
TINY_VAR_X2 = oracle.sample((8, 3), seed=23, scale=[0.01, 1.0, 0.03], shift=[0.5, 0.0, -0.2])
GRAD_MODE_HINT = ("Hint: switch on self.training (set by model.train() / model.eval()), not on "
                  "torch.is_grad_enabled(): people run training-mode steps under no_grad and evaluate with grad on.")


class Layout:
    """The names and shapes of one student's BatchNorm tensors (from a fresh module's state)."""

    def __init__(self, student, num_features, num_dims):
        (state,) = build(student, num_features, num_dims, [state_op()])
        self.what = name_of(num_features, num_dims)
        self.num_features, self.num_dims = num_features, num_dims
        self.gamma, self.beta = parameters(state, num_features, num_dims, strict=False)
        self.mean, self.var = find_moving_stats(student, num_features, num_dims, state, strict=False)
        found = {**state["params"], **state["tensor_attrs"], **state["buffers"]}
        self.shapes = {}
        for name in (self.gamma, self.beta, self.mean, self.var):
            value = tensor(found[name], f"{self.what}: {name}")
            expect(value.numel() == num_features,
                   f"{self.what}: {name} has shape {tuple(value.shape)}; expected {num_features} values, shape "
                   f"{oracle.param_shape(num_features, num_dims)}. Hint: one value per feature/channel.")
            self.shapes[name] = tuple(value.shape)

    def set(self, name, values):
        """An op setting the tensor called ``name`` to ``values`` (reshaped to the student's shape)."""
        value = torch.tensor(values, dtype=torch.float32).reshape(self.shapes[name])
        return {"op": "set", "path": name, "value": value}

    def set_params(self, gamma, beta):
        return [self.set(self.gamma, gamma.flatten().tolist()), self.set(self.beta, beta.flatten().tolist())]

    def set_moving(self, mean=MOVING_MEAN, var=MOVING_VAR):
        return [self.set(self.mean, mean), self.set(self.var, var)]

    def moving_from(self, state, label):
        """The student's moving statistics in ``state``, reshaped to (1, C[, 1, 1]) for comparison."""
        found = {**state["params"], **state["tensor_attrs"], **state["buffers"]}
        out = []
        for name in (self.mean, self.var):
            if name not in found:
                raise Fail(f"{self.what}: {label}, {name} is no longer a tensor attribute or buffer "
                           f"(got {sorted(found)}). Hint: store the returned statistics back under the same names.")
            value = tensor(found[name], f"{self.what}: {label}, {name}")
            expect(value.numel() == self.num_features,
                   f"{self.what}: {label}, {name} has shape {tuple(value.shape)}, expected {self.shapes[name]}. "
                   f"Hint: the moving statistics keep their shape (1, C) or (1, C, 1, 1).")
            shape = oracle.param_shape(self.num_features, self.num_dims)
            out.append((name, found[name], value.reshape(shape)))
        return out


LAYOUTS = weakref.WeakKeyDictionary()


def layout_of(student, num_features, num_dims):
    """Layout of a fresh module, asked once per student and size (the build is seeded, so it is fixed)."""
    cache = LAYOUTS.setdefault(student, {})
    key = (num_features, num_dims)
    if key not in cache:
        cache[key] = Layout(student, num_features, num_dims)
    return cache[key]


def per_channel(values, num_dims):
    return oracle.per_channel(values, num_dims).double()


def zeros_ones_like(t):
    return torch.zeros_like(t), torch.ones_like(t)


def module_case(training, num_dims, gamma, beta, mean=MOVING_MEAN, var=MOVING_VAR, grad_output=None):
    """What one forward of the module was given, for ``autograder.reference.diagnosis`` (eps 1e-5, momentum 0.9)."""
    X = INPUTS[num_dims][0]
    return diagnosis.Case(training, X, gamma, beta, per_channel(mean, num_dims), per_channel(var, num_dims), EPS,
                          MOMENTUM, module=True, grad_output=grad_output)


@check("BatchNorm.moving_stats_init", "BatchNorm", 1,
       "moving mean starts at zeros, moving variance at ones, shape (1, C) or (1, C, 1, 1), not trainable", hidden=True)
def moving_stats_init(student):
    """Guards the initial state: moving_mean = 0 and moving_var = 1 (a fresh model in eval()
    then computes X / sqrt(1 + eps), not X / sqrt(eps)), with gamma's shape so they
    broadcast, and no gradient (they are running averages, not learned). Plain attributes,
    buffers and frozen parameters (requires_grad=False) all pass; the last with a note."""
    note = ""
    for num_features, num_dims in ((4, 2), (5, 4)):
        what = name_of(num_features, num_dims)
        (state,) = build(student, num_features, num_dims, [state_op()])
        mean, var = find_moving_stats(student, num_features, num_dims, state)
        found = candidates(state)
        shape = oracle.param_shape(num_features, num_dims)
        for name, fill, label in ((mean, 0.0, "zeros"), (var, 1.0, "ones")):
            value = expect_shape(found[name], shape, f"{what}: {name}",
                                 "Hint: same shape as gamma: (1, C) for num_dims == 2, (1, C, 1, 1) otherwise.")
            expect_close(value, torch.full(shape, fill), f"{what}: initial {name}",
                         f"Hint: start the moving {'mean' if fill == 0 else 'variance'} at {label} "
                         f"(a variance of 0 would make a fresh model in eval() divide by sqrt(eps)).", rtol=0, atol=0)
            expect(not found[name].requires_grad, f"{what}: {name} requires grad; the moving statistics are not "
                   f"learned. Hint: a plain tensor or register_buffer(...), not nn.Parameter.")
        frozen = [n for n in (mean, var) if n in state["params"]]
        if frozen:
            note = (f"{', '.join(frozen)}: frozen nn.Parameters (requires_grad=False) work; d2l keeps the moving "
                    f"statistics out of parameters() (plain tensors or register_buffer), because every Parameter "
                    f"appears in model.parameters() and so in the optimiser's parameter list.")
    return note


@check("BatchNorm.train_forward", "BatchNorm", 2,
       "training mode: normalises with batch statistics, applies gamma and beta (2-D and 4-D)", hidden=True)
def train_forward(student):
    """Guards forward() in training mode with non-trivial gamma/beta set into the parameters:
    the layer must use its own gamma/beta, the batch statistics, eps = 1e-5, and give the
    input's shape for both num_dims (a layer that always builds (1, C, 1, 1) fails on 2-D).
    A third input has features of tiny variance (std 0.01 and 0.03), where eps = 1e-5 is a
    visible part of sqrt(var + eps): eps left out or added to the standard deviation
    (X - mean) / (std + eps) changes the output by 5% there."""
    for num_features, num_dims, X in CASES_AND_INPUTS + ((3, 2, TINY_VAR_X2),):
        _, gamma, beta = INPUTS[num_dims]
        layout = layout_of(student, num_features, num_dims)
        results = build(student, num_features, num_dims, layout.set_params(gamma, beta) + [forward_op(X)])
        what = f"{layout.what} forward (training mode, input {tuple(X.shape)})"
        y = expect_shape(results[-1]["y"], X.shape, f"{what}: output")
        expect_finite(y, f"{what}: output")
        case = diagnosis.Case(True, X, gamma, beta, *zeros_ones_like(gamma), module=True)
        expect_close(y, diagnosis.compute(case)["Y"], f"{what}: output", diagnosis.hint(case, "Y", y) + (
            "" if diagnosis.identify(case, "Y", y) else " BatchNorm passes self.gamma, self.beta, eps=1e-5 and "
            "is_training=self.training to batch_norm."))


@check("BatchNorm.updates_moving_stats", "BatchNorm", 2,
       "training mode: stores exact moving averages after each forward (momentum 0.9)", hidden=True)
def updates_moving_stats(student):
    """Guards that forward() keeps the returned moving statistics: after 1 and after 3
    training-mode forwards, moving = 0.9 * moving + 0.1 * batch statistic (biased variance),
    for 2-D and 4-D. The moving statistics are first set to non-trivial values, so this
    check is about the update only (their initial values are moving_stats_init's)."""
    for num_features, num_dims in CASES:
        X = INPUTS[num_dims][0]
        batches = [X] + [oracle.sample(tuple(X.shape), seed=70 + k, scale=[1.0, 2.0, 0.5], shift=[1.0, -2.0, 3.0])
                         for k in range(2)]
        layout = layout_of(student, num_features, num_dims)
        ops = layout.set_moving() + [forward_op(batches[0]), state_op(), forward_op(batches[1]),
                                     forward_op(batches[2]), state_op()]
        results = build(student, num_features, num_dims, ops)
        ones = torch.ones(oracle.param_shape(num_features, num_dims), dtype=torch.float64)
        start = (per_channel(MOVING_MEAN, num_dims), per_channel(MOVING_VAR, num_dims))
        for k, state in ((1, results[3]), (3, results[6])):
            # the step that led here, from the right state before it (the first step's is the start)
            _, before_mean, before_var = oracle.train_steps(batches[:k - 1], ones, ones * 0, start[0], start[1],
                                                            EPS, MOMENTUM)
            case = diagnosis.Case(True, batches[k - 1], ones, ones * 0, before_mean, before_var, EPS, MOMENTUM,
                                  module=True)
            _, exp_mean, exp_var = oracle.train_steps(batches[:k], ones, ones * 0, start[0], start[1], EPS, MOMENTUM)
            label = f"after {k} training-mode forward{'s' if k > 1 else ''}"
            for (name, _, got), expected, quantity in zip(layout.moving_from(state, label), (exp_mean, exp_var),
                                                          ("moving_mean", "moving_var")):
                expect_close(got, expected, f"{layout.what}: {label}, {name}", diagnosis.hint(case, quantity, got))


@check("BatchNorm.eval_uses_moving_stats", "BatchNorm", 2,
       "eval mode: normalises with the moving statistics, each sample independently", hidden=True)
def eval_uses_moving_stats(student):
    """Guards prediction after model.eval(): with moving statistics and gamma/beta set to
    non-trivial values, the output is gamma * (X - moving_mean) / sqrt(moving_var + eps) + beta,
    and one sample alone gives the same output as inside its batch (atol 1e-6). One moving
    variance is small (2e-3), so eps left out or put outside the square root shows (0.25%)."""
    for num_features, num_dims in CASES:
        X, gamma, beta = INPUTS[num_dims]
        layout = layout_of(student, num_features, num_dims)
        ops = layout.set_params(gamma, beta) + layout.set_moving(var=EVAL_MOVING_VAR) + \
            [{"op": "eval"}, forward_op(X), state_op(), forward_op(X[1:2].clone())]
        results = build(student, num_features, num_dims, ops)
        what = f"{layout.what} forward (eval mode, input {tuple(X.shape)})"
        y = expect_shape(results[-3]["y"], X.shape, f"{what}: output")
        case = module_case(False, num_dims, gamma, beta, var=EVAL_MOVING_VAR)
        expect_close(y, diagnosis.compute(case)["Y"], f"{what}: output", diagnosis.hint(case, "Y", y))
        changed = [name for (name, _, got), given in zip(layout.moving_from(results[-2], "after a forward in eval mode"),
                                                          (MOVING_MEAN, EVAL_MOVING_VAR))
                   if not torch.allclose(got.double(), per_channel(given, num_dims), rtol=0, atol=1e-7)]
        expect_close(results[-1]["y"], y[1:2], f"{layout.what} (eval mode, sample 1 alone vs in its batch): output",
                     f"Hint: the eval-mode forward changed {' and '.join(changed)}, so the next sample was normalised "
                     f"with other statistics; eval mode must leave the moving statistics unchanged." if changed else
                     "Hint: in eval mode a sample's output must not depend on the rest of the batch.", rtol=0, atol=1e-6)


@check("BatchNorm.eval_keeps_moving_stats", "BatchNorm", 1,
       "eval mode: forward does not change the moving statistics", hidden=True)
def eval_keeps_moving_stats(student):
    """Guards the model's state during evaluation: forwards in eval mode leave the moving
    statistics exactly as they were (atol 1e-7), however many batches are evaluated."""
    for num_features, num_dims in CASES:
        X = INPUTS[num_dims][0]
        layout = layout_of(student, num_features, num_dims)
        other = oracle.sample(tuple(X.shape), seed=80, scale=[3.0, 1.0, 2.0], shift=[-1.0, 4.0, 0.0])
        results = build(student, num_features, num_dims,
                        layout.set_moving() + [{"op": "eval"}, forward_op(X), forward_op(other), state_op()])
        what = f"{layout.what} forward (eval mode, input {tuple(X.shape)}): output"
        expect_attempted(expect_shape(results[-3]["y"], X.shape, what), X, what)
        for (name, _, got), given in zip(layout.moving_from(results[-1], "after two forwards in eval mode"),
                                         (MOVING_MEAN, MOVING_VAR)):
            expect_close(got, per_channel(given, num_dims), f"{layout.what}: after two forwards in eval mode, {name}",
                         "Hint: only training-mode forwards update the moving statistics; in eval mode return them "
                         "unchanged.", rtol=0, atol=1e-7)


@check("BatchNorm.follows_train_flag", "BatchNorm", 2,
       "mode follows train()/eval(), not torch.no_grad()", hidden=True)
def follows_train_flag(student):
    """Guards the d2l-seed pitfall of switching on torch.is_grad_enabled(): the layer's behaviour
    depends on train()/eval() only. From the same state, a train()-mode forward gives the same
    output and the same moving statistics with and without torch.no_grad(); an eval()-mode
    forward gives the same output with and without it; and train() and eval() outputs differ
    (batch vs moving statistics, set far apart here). Compares the student's own runs with
    each other (atol 1e-6), so a mistake elsewhere is not counted twice."""
    for num_features, num_dims in CASES:
        X, gamma, beta = INPUTS[num_dims]
        layout = layout_of(student, num_features, num_dims)
        ops = layout.set_params(gamma, beta) + layout.set_moving() + [{"op": "train"}, forward_op(X), state_op()] + \
            layout.set_moving() + [forward_op(X, no_grad=True), state_op(),
                                   {"op": "eval"}, forward_op(X), forward_op(X, no_grad=True)]
        r = build(student, num_features, num_dims, ops)
        train_grad, train_state, train_nograd, nograd_state, eval_grad, eval_nograd = \
            r[5]["y"], r[6], r[9]["y"], r[10], r[12]["y"], r[13]["y"]
        what = f"{layout.what} in train() mode, input {tuple(X.shape)}"
        y = expect_shape(train_grad, X.shape, f"{what}: output")
        expect_close(train_nograd, y, f"{what}: output under torch.no_grad() vs with gradients enabled",
                     GRAD_MODE_HINT, rtol=0, atol=1e-6)
        for (name, _, got), (_, _, ref) in zip(layout.moving_from(nograd_state, "after a forward under no_grad"),
                                               layout.moving_from(train_state, "after a forward")):
            expect_close(got, ref, f"{what}: {name} after a forward under torch.no_grad() vs with gradients enabled",
                         GRAD_MODE_HINT + " Training steps under no_grad must still update the moving statistics.",
                         rtol=0, atol=1e-6)
        what = f"{layout.what} in eval() mode, input {tuple(X.shape)}"
        expect_close(eval_grad, tensor(eval_nograd, f"{what}: output"),
                     f"{what}: output with gradients enabled vs under torch.no_grad()", GRAD_MODE_HINT, rtol=0, atol=1e-6)
        gap = (tensor(eval_grad, f"{what}: output").double() - y.double()).abs().max().item()
        expect(gap > 1e-3, f"{layout.what}: the outputs in train() and eval() mode are the same (largest difference "
               f"{gap:.2g}), although the batch statistics and the moving statistics differ a lot here. Hint: pass "
               f"self.training to batch_norm; eval() sets it to False, train() to True.")


@check("BatchNorm.parameters_trainable", "BatchNorm", 1,
       "gamma and beta receive the right gradients; the input gradient flows through the batch statistics",
       hidden=True)
def parameters_trainable(student):
    """Guards learning: after a training-mode forward and backward of a fixed upstream gradient,
    gamma.grad = sum(g * X_hat), beta.grad = sum(g) over the batch (and spatial) dims, and
    X.grad matches autograd in float64 of the formula the forward pass computed (so a mistake
    in the forward pass is not counted here; an unknown one is judged by finite differences
    of the module's own output), atol 1e-4 + rtol 1e-3."""
    notes = []
    for num_features, num_dims in CASES:
        X, gamma, beta = INPUTS[num_dims]
        g = oracle.sample(tuple(X.shape), seed=90 + num_dims)
        layout = layout_of(student, num_features, num_dims)
        results = build(student, num_features, num_dims, layout.set_params(gamma, beta) + [forward_op(X, grad_output=g)])
        what = f"{layout.what} (training mode, input {tuple(X.shape)}): gradient"
        result = results[-1]
        y = expect_shape(result["y"], X.shape, f"{layout.what} forward (training mode, input {tuple(X.shape)}): output")
        if result["x_grad"] == "no-graph":
            raise Fail(f"{what}: the output has no autograd graph. Hint: do not detach X or use .data; "
                       f"gamma and beta must be nn.Parameters used in the output.")
        grads = [result["x_grad"]]
        for name in (layout.gamma, layout.beta):
            got = result["param_grads"].get(name)
            if got is None:
                raise Fail(f"{what} w.r.t. {name}: none arrived. Hint: use self.{name} itself in the output "
                           f"(not a copy or .data), so the optimiser can train it.")
            value = tensor(got, f"{what} w.r.t. {name}")
            grads.append(Returned(value.reshape(gamma.shape), False, False, "cpu") if value.numel() == gamma.numel()
                         else got)
        notes.append(judge_gradients(
            what, module_case(True, num_dims, gamma, beta, grad_output=g), y, grads,
            lambda points, n=num_features, d=num_dims, lay=layout: outputs_at(student, n, d, lay, points)))
    return "; ".join(sorted({n for n in notes if n}))


def outputs_at(student, num_features, num_dims, layout, points):
    """The module's training-mode outputs for each (X, gamma, beta) in ``points``, from one fresh module."""
    ops = []
    for X, gamma, beta in points:
        ops += layout.set_params(gamma, beta) + [forward_op(X)]
    results = build(student, num_features, num_dims, ops)
    return [tensor(r["y"], f"{layout.what} forward: output") for r in results if r is not None]


@check("BatchNorm.moving_stats_detached", "BatchNorm", 1,
       "the stored moving statistics carry no autograd history", hidden=True)
def moving_stats_detached(student):
    """Guards memory in training loops: after a training-mode forward/backward on an input that
    requires grad, the stored moving statistics neither require grad nor have a grad_fn;
    otherwise every step's graph is kept alive through them and memory grows."""
    for num_features, num_dims in CASES:
        X = INPUTS[num_dims][0]
        layout = layout_of(student, num_features, num_dims)
        results = build(student, num_features, num_dims,
                        [forward_op(X, grad_output=torch.ones(X.shape)), forward_op(X), state_op()])
        for (name, returned, got), init in zip(layout.moving_from(results[-1], "after training-mode forwards"), (0.0, 1.0)):
            expect(not bool((got.double() == init).all()),
                   f"{layout.what}: after training-mode forwards, {name} still has its initial value, so there is no "
                   f"update whose autograd history could be checked. Hint: store what batch_norm returns.")
            expect(not (returned.requires_grad or returned.grad_fn),
                   f"{layout.what}: after training-mode forwards on an input that requires grad, {name} carries autograd "
                   f"history (requires_grad={returned.requires_grad}, grad_fn set={returned.grad_fn}); expected a "
                   f"plain tensor. Hint: store mean.detach() / var.detach() (or update under torch.no_grad()).")


@check("BatchNorm.from_scratch", "BatchNorm", 1,
       "computed from scratch: no PyTorch normalisation kernel", hidden=True)
def from_scratch(student):
    """Guards the exercise itself: BatchNorm must not delegate to nn.BatchNorm*, F.batch_norm or
    another of PyTorch's normalisation kernels (recorded by the probe during forwards in
    train and eval mode)."""
    seen = set()
    for num_features, num_dims in CASES:
        X = INPUTS[num_dims][0]
        results = build(student, num_features, num_dims,
                        [forward_op(X, watch_norm_ops=True), {"op": "eval"}, forward_op(X, watch_norm_ops=True)])
        seen.update(results[0]["norm_ops"] + results[2]["norm_ops"])
        what = f"{name_of(num_features, num_dims)} forward (training mode, input {tuple(X.shape)}): output"
        expect_attempted(expect_shape(results[0]["y"], X.shape, what), X, what)
    expect(not seen, f"BatchNorm: PyTorch's own normalisation ran inside your module ({', '.join(sorted(seen))}). "
           f"Expected none: write forward() with your batch_norm function, not nn.BatchNorm1d/2d, F.batch_norm "
           f"or layer/instance/group norm.")

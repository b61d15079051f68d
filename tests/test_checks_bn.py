"""Targeted tests of the batch_norm / BatchNorm checks.

- the oracle agrees with PyTorch where the conventions coincide;
- each mistake fails the check that exists for it, with a message that names it,
  and the most specific mistakes fail ONLY their check (no double penalty);
- tolerances: float rounding passes, a 1e-3 relative error fails;
- untouched stubs and an identity function earn (almost) nothing;
- the module finder accepts buffers, attributes and other names.
"""
import functools

import pytest
import torch
from torch.nn import functional as F

from conftest import REFERENCE, grade_path
from variants import Variant
import variants_BatchNorm
import variants_batch_norm

from autograder.core import runner
from autograder.reference import batch_norm as oracle
from autograder.core.check import REGISTRY, Fail
from autograder.checks.batchnorm_module import moving_stats, parameters
from autograder.core.student import Returned, SandboxStudent

PIECES = ["batch_norm", "BatchNorm"]
VARIANTS = {v.id: v for v in variants_batch_norm.WRONG + variants_batch_norm.RIGHT
            + variants_BatchNorm.WRONG + variants_BatchNorm.RIGHT}


@functools.lru_cache(maxsize=None)
def graded(variant_id, folder):
    return grade_path(VARIANTS[variant_id].write(folder), only=PIECES)


@pytest.fixture(scope="module")
def grade(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("batch_norm_variants"))
    return lambda variant_id: graded(variant_id, folder)


def failed(results):
    return {i for i, r in results.items() if not r.passed}


# ---- the oracle ----------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 3), (2, 3, 3, 4)])
def test_oracle_matches_torch_batch_norm(shape):
    X = oracle.sample(shape, seed=1, scale=[1.0, 2.0, 0.5], shift=[0.0, 1.0, -3.0]).double()
    gamma, beta = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64), torch.tensor([0.2, 1.0, -1.5], dtype=torch.float64)
    view = oracle.param_shape(3, len(shape))
    Y, mean, var = oracle.batch_norm_train(X, gamma.reshape(view), beta.reshape(view), 1e-5)
    torch.testing.assert_close(Y, F.batch_norm(X, None, None, gamma, beta, training=True, eps=1e-5))
    mm, mv = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), torch.tensor([4.0, 0.25, 1.0], dtype=torch.float64)
    torch.testing.assert_close(oracle.batch_norm_predict(X, gamma.reshape(view), beta.reshape(view), mm.reshape(view),
                                                         mv.reshape(view), 1e-5),
                               F.batch_norm(X, mm, mv, gamma, beta, training=False, eps=1e-5))
    # PyTorch's running stats with momentum 1 - m are d2l's with m; its running_var is unbiased
    running_mean, running_var = mm.clone(), mv.clone()
    F.batch_norm(X, running_mean, running_var, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    torch.testing.assert_close(running_mean.reshape(view), oracle.moving_update(mm.reshape(view), mean, 0.9))
    m = X.numel() // 3
    torch.testing.assert_close(running_var.reshape(view), oracle.moving_update(mv.reshape(view), var * m / (m - 1), 0.9))


def test_batch_norm_oracle_grads_match_autograd():
    X = oracle.sample((2, 3, 3, 4), seed=2, scale=[1.0, 2.0, 0.5]).double().requires_grad_(True)
    gamma = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64, requires_grad=True)
    beta = torch.tensor([0.2, 1.0, -1.5], dtype=torch.float64, requires_grad=True)
    g = oracle.sample((2, 3, 3, 4), seed=3).double()
    F.batch_norm(X, None, None, gamma, beta, training=True, eps=1e-5).backward(g)
    dX, dgamma, dbeta = oracle.train_grads(X, gamma.reshape(1, 3, 1, 1), beta.reshape(1, 3, 1, 1), 1e-5, g)
    torch.testing.assert_close(dX, X.grad)
    torch.testing.assert_close(dgamma.flatten(), gamma.grad)
    torch.testing.assert_close(dbeta.flatten(), beta.grad)
    # cutting the path through the mean changes the gradient far beyond the check's tolerance
    assert (oracle.train_grads(X, gamma.reshape(1, 3, 1, 1), beta.reshape(1, 3, 1, 1), 1e-5, g, detach_mean=True)[0]
            - dX).abs().max() > 1e-2


# ---- each mistake fails its own check ------------------------------------

# variant id -> (checks it must fail, exact: fails nothing else, words its message must hold)
TARGETS = {
    "batch_norm_unbiased_var": ({"batch_norm.train_output_normalised", "batch_norm.train_stats_2d", "batch_norm.train_stats_4d"},
                        False, "unbiased"),
    "batch_norm_4d_stats_dim0_only": ({"batch_norm.train_stats_4d", "batch_norm.returns_triple"}, False, "dim 0 only"),
    "batch_norm_4d_stats_all_dims": ({"batch_norm.train_stats_4d"}, False, "whole tensor"),
    "batch_norm_eps_outside_sqrt": ({"batch_norm.eps_inside_sqrt"}, False, "outside the square root"),
    "batch_norm_no_eps": ({"batch_norm.constant_channel"}, False, "NaN"),
    "batch_norm_eps_hardcoded": ({"batch_norm.eps_inside_sqrt"}, True, "eps argument"),
    "batch_norm_gamma_beta_swapped": ({"batch_norm.train_stats_2d", "batch_norm.predict_uses_moving_stats"}, False, "swapped"),
    "batch_norm_pytorch_momentum": ({"batch_norm.moving_average", "batch_norm.momentum_argument",
                             "BatchNorm.updates_moving_stats"}, True, "OLD value"),
    "batch_norm_moving_never_updated": ({"batch_norm.moving_average"}, False, "did not change"),
    "batch_norm_momentum_hardcoded": ({"batch_norm.momentum_argument"}, True, "momentum"),
    "batch_norm_moving_var_unbiased": ({"batch_norm.moving_average", "batch_norm.momentum_argument",
                                "BatchNorm.updates_moving_stats"}, True, "UNBIASED"),
    "batch_norm_moving_not_detached": ({"batch_norm.moving_stats_detached", "BatchNorm.moving_stats_detached"}, True,
                               "autograd history"),
    "batch_norm_mean_detached_in_norm": ({"batch_norm.gradient_through_stats", "BatchNorm.parameters_trainable"}, True,
                                 "through the mean"),
    "batch_norm_predict_uses_batch_stats": ({"batch_norm.predict_uses_moving_stats", "batch_norm.predict_independent_of_batch",
                                     "BatchNorm.eval_uses_moving_stats"}, False, "BATCH statistics"),
    "batch_norm_grad_mode_switch": ({"batch_norm.predict_uses_moving_stats", "BatchNorm.follows_train_flag"}, False,
                            "moving_mean and moving_var passed in"),
    "batch_norm_predict_updates_moving": ({"batch_norm.predict_uses_moving_stats", "BatchNorm.eval_keeps_moving_stats"}, False,
                                  "unchanged"),
    "batch_norm_delegates_F": ({"batch_norm.from_scratch", "BatchNorm.from_scratch"}, False, "aten::native_batch_norm"),
    "batch_norm_delegates_F_biased": ({"batch_norm.from_scratch", "BatchNorm.from_scratch"}, True, "F.batch_norm"),
    "batch_norm_layer_norm_4d": ({"batch_norm.train_stats_4d"}, False, "batch_norm"),
    "BatchNorm_grad_mode_switch": ({"BatchNorm.follows_train_flag", "BatchNorm.eval_uses_moving_stats"}, False,
                            "torch.is_grad_enabled()"),
    "BatchNorm_always_training": ({"BatchNorm.eval_uses_moving_stats", "BatchNorm.follows_train_flag"}, False, "eval"),
    "BatchNorm_moving_var_zeros": ({"BatchNorm.moving_stats_init"}, True, "ones"),
    "BatchNorm_gamma_zeros": ({"BatchNorm.parameters_init"}, False, "gamma starts as ones"),
    "BatchNorm_gamma_beta_init_swapped": ({"BatchNorm.parameters_init"}, False, "gamma starts as ones"),
    "BatchNorm_plain_tensor_params": ({"BatchNorm.parameters_init", "BatchNorm.parameters_trainable"}, True, "nn.Parameter"),
    "BatchNorm_ignores_num_dims": ({"BatchNorm.parameters_init", "BatchNorm.forward_train_shape"}, False, "(1, 4)"),
    "BatchNorm_forgot_store": ({"BatchNorm.updates_moving_stats"}, False, "store what batch_norm returns"),
    "BatchNorm_pytorch_momentum_value": ({"BatchNorm.updates_moving_stats"}, True, "momentum=0.9"),
    "BatchNorm_eps_too_big": ({"BatchNorm.train_forward"}, False, "eps=1e-5"),
    "BatchNorm_moving_stats_parameters": ({"BatchNorm.moving_stats_init", "BatchNorm.moving_stats_detached"}, True,
                                   "nn.Parameter"),
    "BatchNorm_eval_updates_moving": ({"BatchNorm.eval_keeps_moving_stats"}, False, "unchanged"),
    "BatchNorm_moving_not_detached": ({"BatchNorm.moving_stats_detached"}, True, "autograd history"),
    "BatchNorm_gamma_data": ({"BatchNorm.parameters_trainable"}, True, "none arrived"),
    "BatchNorm_delegates_nn": ({"BatchNorm.from_scratch"}, False, "nn.BatchNorm1d/2d"),
    "BatchNorm_delegates_F_buffers": ({"BatchNorm.from_scratch"}, True, "aten::native_batch_norm"),
}


def test_batch_norm_every_wrong_variant_has_a_target():
    wrong = {v.id for v in variants_batch_norm.WRONG + variants_BatchNorm.WRONG}
    assert wrong == set(TARGETS)
    assert len(wrong) >= 18


@pytest.mark.parametrize("variant_id", sorted(TARGETS))
def test_mistake_fails_its_check(variant_id, grade):
    must_fail, exact, words = TARGETS[variant_id]
    results = grade(variant_id)
    got = failed(results)
    assert must_fail <= got, f"{variant_id}: expected to fail {sorted(must_fail - got)}; failed {sorted(got)}"
    if exact:
        assert got == must_fail, f"{variant_id}: also failed {sorted(got - must_fail)}"
    messages = " | ".join(results[i].message for i in sorted(must_fail))
    assert words in messages, messages
    for i in got:
        piece = results[i].piece
        assert results[i].message.startswith((piece, f"{piece}(")) or "not implemented" in results[i].message, \
            (i, results[i].message)


@pytest.mark.parametrize("variant_id", [v.id for v in variants_batch_norm.RIGHT + variants_BatchNorm.RIGHT])
def test_right_variant_passes_every_check(variant_id, grade):
    assert not failed(grade(variant_id)), {i: r.message for i, r in grade(variant_id).items() if not r.passed}


def test_batch_norm_messages_show_expected_got_and_hint(grade):
    message = grade("batch_norm_pytorch_momentum")["batch_norm.moving_average"].message
    assert "batch_norm (training, 2-D input of shape (8, 3), momentum=0.9): after step 1 of 3: moving_mean" in message
    assert "expected 0.305012" in message and "got 2.74511" in message and "Hint:" in message


# ---- tolerances ----------------------------------------------------------

def perturbed(tmp_path, y_scale=1.0, stat_scale=1.0):
    """The reference with Y scaled, and the moving statistics it returns in training mode scaled
    (prediction mode must return them exactly, so they stay untouched there)."""
    append = f'''
_exact_batch_norm = batch_norm


def batch_norm(is_training, *args, **kwargs):
    Y, moving_mean, moving_var = _exact_batch_norm(is_training, *args, **kwargs)
    if is_training:
        moving_mean, moving_var = moving_mean * {stat_scale!r}, moving_var * {stat_scale!r}
    return Y * {y_scale!r}, moving_mean, moving_var
'''
    return grade_path(Variant("perturbed", "batch_norm", "", append=append).write(str(tmp_path)), only=PIECES)


def test_batch_norm_rounding_sized_errors_pass(tmp_path):
    assert not failed(perturbed(tmp_path, y_scale=1 + 2e-6, stat_scale=1 + 2e-6))


def test_batch_norm_small_real_errors_fail(tmp_path):
    got = failed(perturbed(tmp_path, y_scale=1 + 1e-3))
    assert {"batch_norm.train_stats_2d", "batch_norm.train_stats_4d", "batch_norm.predict_uses_moving_stats",
            "BatchNorm.train_forward", "BatchNorm.eval_uses_moving_stats"} <= got
    got = failed(perturbed(tmp_path, stat_scale=1 + 1e-3))
    assert {"batch_norm.moving_average", "batch_norm.momentum_argument", "BatchNorm.updates_moving_stats"} <= got


# ---- stubs and do-nothing code ------------------------------------------

STUB = '''
import torch
from torch import nn


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    # YOUR CODE HERE
    raise NotImplementedError()


class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        # YOUR CODE HERE
{init_raises}
    def forward(self, X):
        # YOUR CODE HERE
        raise NotImplementedError()
'''


@pytest.mark.parametrize("init_raises", ["        raise NotImplementedError()\n", ""])
def test_batch_norm_untouched_stub_scores_zero(tmp_path, init_raises):
    path = tmp_path / "stub.py"
    path.write_text(STUB.format(init_raises=init_raises))
    results = grade_path(str(path), only=PIECES)
    assert len(results) == sum(1 for c in REGISTRY.values() if c.piece in PIECES)
    for r in results.values():
        assert r.score == 0 and "not implemented yet" in r.message, (r.id, r.message)


def test_batch_norm_identity_earns_only_contract_and_init(tmp_path):
    path = tmp_path / "identity.py"
    path.write_text('''
import torch
from torch import nn


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    return X, moving_mean, moving_var


class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        return X
''')
    results = grade_path(str(path), only=PIECES)
    assert {i for i, r in results.items() if r.passed} == {
        "batch_norm.returns_triple", "BatchNorm.parameters_init", "BatchNorm.moving_stats_init"}


# ---- finding the module's tensors ---------------------------------------

def t(values, shape=(1, 3)):
    return Returned(torch.tensor(values, dtype=torch.float32).reshape(shape), False, False, "cpu")


def state(params=None, buffers=None, attrs=None):
    return {"params": params or {}, "buffers": buffers or {}, "tensor_attrs": attrs or {}}


@pytest.mark.parametrize("st, expected", [
    (state(attrs={"moving_mean": t([0, 0, 0]), "moving_var": t([1, 1, 1])}), ("moving_mean", "moving_var")),
    (state(buffers={"running_mean": t([0, 0, 0]), "running_var": t([1, 1, 1])}), ("running_mean", "running_var")),
    (state(attrs={"mu": t([0, 0, 0]), "sigma2": t([1, 1, 1])}), ("mu", "sigma2")),
    (state(attrs={"mean": t([5, 5, 5]), "moving_mean": t([0, 0, 0]), "moving_var": t([1, 1, 1])}),
     ("moving_mean", "moving_var")),
    (state(buffers={"bn.moving_mean": t([0, 0, 0]), "bn.moving_var": t([1, 1, 1])}),
     ("bn.moving_mean", "bn.moving_var")),
])
def test_BatchNorm_moving_stats_found_by_name_or_value(st, expected):
    assert moving_stats(st, 3, 2) == expected


def test_BatchNorm_moving_stats_as_parameters():
    st = state(params={"moving_mean": t([0, 0, 0]), "moving_var": t([1, 1, 1])})
    with pytest.raises(Fail, match="nn.Parameter"):
        moving_stats(st, 3, 2)
    assert moving_stats(st, 3, 2, strict=False) == ("moving_mean", "moving_var")


def test_BatchNorm_parameters_found_by_name_or_value():
    assert parameters(state(params={"gamma": t([1, 1, 1]), "beta": t([0, 0, 0])}), 3, 2) == ("gamma", "beta")
    assert parameters(state(params={"weight": t([2, 2, 2]), "bias": t([3, 3, 3])}), 3, 2) == ("weight", "bias")
    assert parameters(state(params={"scale": t([1, 1, 1]), "shift": t([0, 0, 0])}), 3, 2) == ("scale", "shift")
    plain = state(attrs={"gamma": t([1, 1, 1]), "beta": t([0, 0, 0])})
    with pytest.raises(Fail, match="plain tensors"):
        parameters(plain, 3, 2)
    assert parameters(plain, 3, 2, strict=False) == ("gamma", "beta")


# ---- the rubric and the sandbox -----------------------------------------

def test_batch_norm_rubric_of_the_two_pieces():
    runner.import_checks(include_hidden=True)
    ours = [c for c in REGISTRY.values() if c.piece in PIECES]
    assert all(c.id.startswith(c.piece + ".") for c in ours)
    assert all(1 <= c.points <= 3 and c.judge.__doc__ and c.title for c in ours)
    assert 28 <= sum(c.points for c in ours) <= 36
    assert {c.id for c in ours if not c.hidden} == {
        "batch_norm.returns_triple", "batch_norm.train_output_normalised",
        "BatchNorm.parameters_init", "BatchNorm.forward_train_shape"}


def test_batch_norm_sandboxed_reference_full_marks():
    student = SandboxStudent(REFERENCE)
    try:
        results, _ = runner.grade(student, runner.selected_checks(True, PIECES))
    finally:
        student.close()
    assert results and all(r.passed for r in results), {r.id: r.message for r in results if not r.passed}

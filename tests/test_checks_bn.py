"""Targeted tests of the batch_norm / BatchNorm checks.

- the oracle agrees with PyTorch where the conventions coincide;
- each mistake fails the check that exists for it, with a message that names it,
  and the most specific mistakes fail ONLY their check (no double penalty);
- tolerances: float rounding passes, a 1e-3 relative error fails;
- untouched stubs and an identity function earn (almost) nothing;
- the module finder accepts buffers, attributes and other names.
"""
import dataclasses
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

pytestmark = pytest.mark.xdist_group("test_checks_bn")   # its module fixtures are built once, in one test process

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
                        False, "UNBIASED"),
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
    "batch_norm_moving_var_unbiased": ({"batch_norm.moving_average", "BatchNorm.updates_moving_stats"}, True, "UNBIASED"),
    "batch_norm_moving_not_detached": ({"batch_norm.moving_stats_detached", "BatchNorm.moving_stats_detached"}, True,
                               "autograd history"),
    "batch_norm_mean_detached_in_norm": ({"batch_norm.gradient_through_stats", "BatchNorm.parameters_trainable"}, True,
                                 "through the batch mean"),
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
    "BatchNorm_plain_tensor_params": ({"BatchNorm.parameters_init", "BatchNorm.parameters_trainable",
                                       "BatchNorm.follows_device"}, True, "nn.Parameter"),
    "BatchNorm_ignores_num_dims": ({"BatchNorm.parameters_init", "BatchNorm.forward_train_shape"}, False, "(1, 4)"),
    "BatchNorm_forgot_store": ({"BatchNorm.updates_moving_stats"}, False, "store what batch_norm returns"),
    "BatchNorm_pytorch_momentum_value": ({"BatchNorm.updates_moving_stats"}, True, "momentum=0.9"),
    "BatchNorm_eps_too_big": ({"BatchNorm.train_forward"}, False, "eps=1e-5"),
    "BatchNorm_moving_stats_parameters": ({"BatchNorm.moving_stats_init", "BatchNorm.moving_stats_detached"}, True,
                                   "nn.Parameter"),
    "BatchNorm_eval_updates_moving": ({"BatchNorm.eval_keeps_moving_stats"}, False, "unchanged"),
    "BatchNorm_moving_not_detached": ({"BatchNorm.moving_stats_detached", "BatchNorm.follows_device"}, True,
                                      "autograd history"),
    "BatchNorm_gamma_data": ({"BatchNorm.parameters_trainable"}, True, "none arrived"),
    "BatchNorm_delegates_nn": ({"BatchNorm.from_scratch"}, False, "nn.BatchNorm1d/2d"),
    "BatchNorm_delegates_F_buffers": ({"BatchNorm.from_scratch"}, True, "aten::native_batch_norm"),
    # modelled on public code styles (issue 9)
    "batch_norm_cs231n_reshape_no_transpose": ({"batch_norm.train_stats_4d", "batch_norm.moving_average"}, False,
                                               "mix channels"),
    "batch_norm_function_backward_constants": ({"batch_norm.gradient_through_stats", "BatchNorm.parameters_trainable"},
                                               True, "as constants"),
    "batch_norm_predict_no_eps": ({"batch_norm.eps_inside_sqrt", "BatchNorm.eval_uses_moving_stats"}, True,
                                  "eps is missing in prediction mode"),
    "batch_norm_predict_eps_outside": ({"batch_norm.eps_inside_sqrt", "BatchNorm.eval_uses_moving_stats"}, True,
                                       "belongs inside: sqrt(moving_var + eps)"),
    "batch_norm_var_mean_default": ({"batch_norm.train_stats_2d", "batch_norm.train_stats_4d", "batch_norm.moving_average"},
                                    False, "UNBIASED"),
    "batch_norm_divides_by_var": ({"batch_norm.train_stats_2d", "batch_norm.train_stats_4d"}, False,
                                  "square root is missing"),
    "batch_norm_train_normalises_with_updated_moving": ({"batch_norm.train_stats_2d", "batch_norm.train_stats_4d",
                                                         "BatchNorm.train_forward"}, False, "after this batch's update"),
    "BatchNorm_plain_attrs_never_moved": ({"BatchNorm.follows_device"}, True, "register_buffer"),
    "BatchNorm_moves_only_to_cuda": ({"BatchNorm.follows_device"}, True, "moving_mean (on cpu)"),
    "BatchNorm_moves_only_when_training": ({"BatchNorm.follows_device"}, True, "eval-mode forward straight away"),
    "BatchNorm_pytorch_momentum_convention": ({"BatchNorm.updates_moving_stats"}, True, "OLD value"),
    "BatchNorm_torch_var_unbiased": ({"BatchNorm.forward_train_shape", "BatchNorm.train_forward",
                                      "BatchNorm.updates_moving_stats"}, True, "UNBIASED"),
    "BatchNorm_std_plus_eps": ({"BatchNorm.train_forward", "BatchNorm.eval_uses_moving_stats"}, True,
                               "outside the square root"),
    "BatchNorm_subclasses_BatchNorm2d": ({"BatchNorm.parameters_init", "BatchNorm.from_scratch"}, False,
                                         "is PyTorch's own nn.BatchNorm"),
}


def test_batch_norm_every_wrong_variant_has_a_target():
    wrong = {v.id for v in variants_batch_norm.WRONG + variants_BatchNorm.WRONG}
    assert wrong == set(TARGETS)
    assert len(wrong) >= 40


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

def t(values, shape=(1, 3), grad=False):
    return Returned(torch.tensor(values, dtype=torch.float32).reshape(shape), grad, False, "cpu")


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
    trainable = state(params={"moving_mean": t([0, 0, 0], grad=True), "moving_var": t([1, 1, 1], grad=True)})
    with pytest.raises(Fail, match="nn.Parameter"):
        moving_stats(trainable, 3, 2)
    assert moving_stats(trainable, 3, 2, strict=False) == ("moving_mean", "moving_var")
    frozen = state(params={"gamma": t([1, 1, 1], grad=True), "beta": t([0, 0, 0], grad=True),
                           "m": t([0, 0, 0]), "v": t([1, 1, 1])})
    assert moving_stats(frozen, 3, 2) == ("m", "v")
    assert parameters(frozen, 3, 2) == ("gamma", "beta")


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
    assert 28 <= sum(c.points for c in ours) <= 37
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


# ---- diagnosis: the hint names the mistake the answer shows (issue 9) -----

from autograder.reference import diagnosis  # noqa: E402


def diagnosis_cases():
    """The inputs the checks use, in both modes, with and without a gradient."""
    from autograder.checks.batch_norm import BETA2, BETA4, GAMMA2, GAMMA4, X2, X4
    mm2, mv2 = oracle.per_channel([0.5, -1.0, 2.0], 2), oracle.per_channel([4.0, 0.25, 1.0], 2)
    mm4, mv4 = oracle.per_channel([0.5, -1.0, 2.0], 4), oracle.per_channel([4.0, 0.25, 1.0], 4)
    g2, g4 = oracle.sample((8, 3), seed=60), oracle.sample((2, 3, 3, 4), seed=61)
    return [diagnosis.Case(training, X, gamma, beta, mm, mv, eps, momentum, grad_output=g)
            for training in (True, False) for eps, momentum in ((1e-5, 0.9), (1e-3, 0.6))
            for X, gamma, beta, mm, mv, g in ((X2, GAMMA2, BETA2, mm2, mv2, g2), (X4, GAMMA4, BETA4, mm4, mv4, g4))]


@pytest.mark.parametrize("quantity", ["Y", "moving_mean", "moving_var", "dX"])
def test_diagnosis_names_each_mistake_it_knows(quantity):
    """Every mistake of the family, made alone, is recognised as itself (or as one with the same
    wording): the hints can tell the mistakes apart on the checks' own inputs."""
    seen = set()
    for case in diagnosis_cases():
        right = diagnosis.compute(case)
        for key in diagnosis.FAMILY[quantity]:
            wrong = diagnosis.compute(case, (key,))
            if wrong is None or diagnosis.close(wrong[quantity], right[quantity], 1e-4, 1e-5):
                continue
            found = diagnosis.identify(case, quantity, wrong[quantity].float())
            assert found and diagnosis.MISTAKES[found] == diagnosis.MISTAKES[key] or \
                diagnosis.close(diagnosis.compute(case, (found,))[quantity], wrong[quantity], 1e-4, 1e-5), (key, found)
            seen.add(key)
    assert len(seen) >= 3


def test_diagnosis_says_when_nothing_matches_and_reads_off_eps():
    case = diagnosis_cases()[0]
    right = diagnosis.compute(case)["Y"]
    hint = diagnosis.hint(case, "Y", right * 1.01)
    assert "none of the usual mistakes" in hint and "the formula: Y = gamma" in hint
    odd_eps = diagnosis.compute(dataclasses.replace(case, eps=0.01))["Y"]
    assert "eps looks like 0.01" in diagnosis.hint(case, "Y", odd_eps)


def test_diagnosis_reads_off_a_momentum():
    case = diagnosis_cases()[0]
    odd = diagnosis.compute(dataclasses.replace(case, momentum=0.7))["moving_mean"]
    assert "keeps 0.7 of the old value" in diagnosis.hint(case, "moving_mean", odd)


def test_cs231n_reshape_is_not_told_its_momentum_is_wrong(grade):
    message = grade("batch_norm_cs231n_reshape_no_transpose")["batch_norm.moving_average"].message
    assert "mix channels" in message and "OLD value" not in message and "momentum" not in message.split("Hint:")[1]


def test_unbiased_variance_does_not_fail_the_gradient_check(grade):
    """A check named for gradients fails only for gradient reasons: the gradient of the unbiased
    formula is right for what the forward pass computes; a note says so."""
    result = grade("batch_norm_unbiased_var")["batch_norm.gradient_through_stats"]
    assert result.passed and "unbiased variance" in result.message
    assert "let autograd see" not in result.message


def test_gradient_of_an_unknown_forward_is_judged_by_finite_differences(tmp_path):
    """eps hard-coded to 1e-2 is no mistake of the family; its own gradient passes the gradient
    checks, and the same forward with a detached mean fails them."""
    odd = "X_hat = (X - mean) / torch.sqrt(var + 1e-2)"
    right = Variant("odd_eps", "batch_norm", "", replace=(("X_hat = (X - mean) / torch.sqrt(var + eps)", odd),))
    results = grade_path(right.write(str(tmp_path)), only=PIECES)
    assert results["batch_norm.gradient_through_stats"].passed, results["batch_norm.gradient_through_stats"].message
    assert "finite differences" in results["batch_norm.gradient_through_stats"].message
    assert not results["batch_norm.train_stats_2d"].passed
    wrong = Variant("odd_eps_detached", "batch_norm", "", replace=(
        ("X_hat = (X - mean) / torch.sqrt(var + eps)", odd.replace("(X - mean)", "(X - mean.detach())")),))
    results = grade_path(wrong.write(str(tmp_path)), only=PIECES)
    message = results["batch_norm.gradient_through_stats"].message
    assert not results["batch_norm.gradient_through_stats"].passed and "finite differences" in message, message
    assert "a shift of each feature/channel" in message


def test_small_moving_variance_catches_eps_in_prediction_only(grade):
    for variant_id in ("batch_norm_predict_no_eps", "batch_norm_predict_eps_outside"):
        message = grade(variant_id)["batch_norm.eps_inside_sqrt"].message
        assert "prediction" in message and "moving_var [0.0001, 0.004, 0.01]" in message, message


# ---- devices without a GPU (issue 9) --------------------------------------

def test_device_check_passes_d2l_reference_and_buffers(reference_results, grade):
    assert reference_results["BatchNorm.follows_device"].passed   # plain attributes moved in forward (d2l)
    assert not failed(grade("BatchNorm_right_buffers_inplace"))
    assert not failed(grade("BatchNorm_right_frozen_parameters"))


def test_device_check_names_the_tensors_left_behind(grade):
    message = grade("BatchNorm_plain_attrs_never_moved")["BatchNorm.follows_device"].message
    assert "moving_mean (on cpu)" in message and "register_buffer" in message and "meta" in message


def test_device_check_forgives_errors_that_are_not_about_devices(tmp_path):
    """.item() cannot run on the meta device; when the tensors moved, that is not a device bug."""
    source = Variant("item", "BatchNorm", "", replace=(
        ("        Y, self.moving_mean, self.moving_var = batch_norm(",
         "        assert float(X.abs().max().item()) >= 0\n"
         "        Y, self.moving_mean, self.moving_var = batch_norm("),))
    results = grade_path(source.write(str(tmp_path)), only=["BatchNorm"])
    result = results["BatchNorm.follows_device"]
    assert result.passed and "not about devices" in result.message, result.message


# ---- finding the moving statistics (issue 9) ------------------------------

def test_frozen_parameters_pass_with_a_note(grade):
    result = grade("BatchNorm_right_frozen_parameters")["BatchNorm.moving_stats_init"]
    assert result.passed and "parameters()" in result.message and "optimiser" in result.message


def test_BatchNorm_moving_stats_found_by_behaviour():
    before = state(buffers={"a": t([0, 0, 0]), "b": t([0, 0, 0])})
    after = state(buffers={"a": t([0.1, -0.3, 0.2]), "b": t([0.2, 0.1, 0.5])})
    with pytest.raises(Fail):
        moving_stats(before, 3, 2)
    assert moving_stats(before, 3, 2, after=after) == ("a", "b")

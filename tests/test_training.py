"""The training check (piece ``training``): the reference passes, each mistake fails the check that exists for it.

Real runs (about 3 s each on the CPU) for the reference, a correct alternative
and five realistic mistakes; the device and GPU-memory judgements, which need a
GPU to fail for real, are fed fake probe results (the judges are pure functions).
What each check does NOT catch is asserted too, so this file documents the
check's reach: PyTorch's momentum convention changes only eval() statistics,
which a short run cannot tell apart; the batch_norm / BatchNorm checks catch it.
"""
import importlib.util
import os

import pytest
import torch

from autograder.core import runner
from autograder.reference import training as training_ref
from autograder.core.check import Fail
from autograder.checks import training as checks
from autograder.core.student import InProcessStudent, Returned
from autograder.student_side import train_probe
from conftest import REFERENCE, grade_path
from variants import Variant

pytestmark = pytest.mark.xdist_group("test_training")   # its module fixtures are built once, in one test process

IDS = ("training.loss_matches_reference", "training.accuracy", "training.on_device",
       "training.no_graph_growth", "training.eval_deterministic")
GPU = torch.cuda.is_available()


@pytest.fixture(autouse=True)
def cpu_training(monkeypatch):
    monkeypatch.setenv(training_ref.DEVICE_ENV, "auto")


def failed(results):
    return {i for i, r in results.items() if not r.passed}


# ---- the device choice ------------------------------------------------------------------------

@pytest.mark.skipif(GPU, reason="this machine has a GPU")
def test_auto_and_cpu_train_on_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.delenv(training_ref.DEVICE_ENV)
    assert training_ref.choose_device() == "cpu"
    assert training_ref.choose_device("cpu") == "cpu"
    monkeypatch.setenv(training_ref.DEVICE_ENV, "CPU")
    assert training_ref.choose_device() == "cpu"


@pytest.mark.skipif(GPU, reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    with pytest.raises(training_ref.DeviceError, match=r"--device cuda was asked for.*no CUDA GPU.*--device cpu"):
        training_ref.choose_device("cuda")
    monkeypatch.setenv(training_ref.DEVICE_ENV, "cuda")
    with pytest.raises(training_ref.DeviceError):
        training_ref.choose_device()
    with pytest.raises(train_probe.ProbeError, match="sees no GPU"):
        train_probe.resolve_device("cuda")


def test_auto_picks_cuda_when_pytorch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_ref.choose_device() == "cuda"
    assert training_ref.choose_device("cuda") == "cuda"
    assert training_ref.choose_device("cpu") == "cpu"


def test_unknown_device_is_refused():
    with pytest.raises(training_ref.DeviceError, match="auto, cpu, cuda"):
        training_ref.choose_device("tpu")


def test_a_device_error_fails_the_checks_with_its_message(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(training_ref.DEVICE_ENV, "cuda")
    results = grade_path(REFERENCE, only=["training"])
    assert failed(results) == set(IDS)
    assert all("cannot train here" in r.message and "not a problem with your code" in r.message
               for r in results.values())


# ---- the plan and the reference run ---------------------------------------------------------------

def test_plan_budget_and_data_are_stated():
    plan = training_ref.plan("cpu")
    b = plan.budget
    assert plan.kwargs["order"].shape == (b.steps, b.batch_size) == (80, 64)
    assert plan.dataset in training_ref.ACCURACY_THRESHOLD and plan.description
    assert training_ref.BUDGETS["cuda"].steps == 2 * (60000 // 256)


def test_reference_losses_are_deterministic_and_match_a_from_scratch_layer():
    """Two runs give bit-identical losses; the reference solution's BatchNorm stays 100x inside the tolerance."""
    spec = importlib.util.spec_from_file_location("reference_solution", REFERENCE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    plan = training_ref.plan("cpu")
    once = training_ref.reference_run(plan)["losses"]
    twice = training_ref.reference_run(plan)["losses"]
    assert once == twice == training_ref.reference_losses("cpu")
    theirs = training_ref.reference_run(plan, reference.BatchNorm)["losses"]
    assert max(abs(a - b) for a, b in zip(once, theirs)) < training_ref.LOSS_ATOL / 100


# ---- real runs: the reference, a correct alternative, realistic mistakes -----------------------------

RIGHT_BUFFERS_INPLACE = Variant("training_right_buffers_inplace", "training",
                                "buffers, torch.var_mean, in-place updates under no_grad", append='''
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        if not self.training:
            return self.gamma * (X - self.moving_mean) / torch.sqrt(self.moving_var + 1e-5) + self.beta
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        var, mean = torch.var_mean(X, dim=dims, unbiased=False, keepdim=True)
        with torch.no_grad():
            self.moving_mean.mul_(0.9).add_(0.1 * mean)
            self.moving_var.mul_(0.9).add_(0.1 * var)
        return self.gamma * (X - mean) / torch.sqrt(var + 1e-5) + self.beta
''')

WRONG = {
    # variant: the training checks it must fail (and only those)
    Variant("training_moving_not_detached", "training", "moving statistics keep autograd history",
            replace=(("(1.0 - momentum) * mean.detach()", "(1.0 - momentum) * mean"),
                     ("(1.0 - momentum) * var.detach()", "(1.0 - momentum) * var"))): {"training.no_graph_growth"},
    Variant("training_unbiased_variance", "training", "normalises with the unbiased variance (N-1)",
            replace=(("var = ((X - mean) ** 2).mean(dim=0)", "var = X.var(dim=0, unbiased=True)"),
                     ("var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)",
                      "var = X.var(dim=(0, 2, 3), unbiased=True, keepdim=True)"))): {"training.loss_matches_reference"},
    Variant("training_grad_mode_switch", "training", "mode from torch.is_grad_enabled() (seed 000)",
            replace=(("self.training, X, self.gamma", "torch.is_grad_enabled(), X, self.gamma"),)):
        {"training.eval_deterministic"},
    Variant("training_moving_never_updated", "training", "moving statistics never updated",
            replace=(("moving_mean = momentum * moving_mean + (1.0 - momentum) * mean.detach()",
                      "moving_mean = moving_mean"),
                     ("moving_var = momentum * moving_var + (1.0 - momentum) * var.detach()",
                      "moving_var = moving_var"))): {"training.accuracy"},
    # PyTorch's momentum number in d2l's formula: training losses are untouched and the moving statistics,
    # mostly the last batch's, still classify well: no training check can see it (batch_norm / BatchNorm do).
    Variant("training_pytorch_momentum", "training", "momentum=0.1 in d2l's formula",
            replace=(("eps=1e-5, momentum=0.9)", "eps=1e-5, momentum=0.1)"),)): set(),
}


@pytest.fixture(scope="module")
def reference_training():
    """The reference graded on the training checks, and the raw probe result of that one run."""
    student = InProcessStudent(REFERENCE)
    try:
        results, _ = runner.grade(student, runner.selected_checks(True, ["training"]))
        plan, result = checks.training_run(student)       # cached: the same run the checks judged
    finally:
        student.close()
    return {r.id: r for r in results}, plan, result


def test_reference_passes_every_training_check(reference_training):
    results, _, _ = reference_training
    assert set(results) == set(IDS)
    assert not failed(results), {i: r.message for i, r in results.items()}


def test_passing_notes_say_which_data_was_used(reference_training):
    _, plan, result = reference_training
    note = checks.judge_accuracy(plan, result)
    assert plan.description in note and "test accuracy" in note
    assert result["judge"]["correct"] / result["total"] >= plan.threshold + 0.1     # a clear margin, not a coin toss
    assert plan.description in checks.judge_losses(plan, result, training_ref.reference_losses(plan.device))


def test_a_correct_alternative_passes(tmp_path):
    results = grade_path(RIGHT_BUFFERS_INPLACE.write(str(tmp_path)), only=["training"])
    assert not failed(results), {i: r.message for i, r in results.items() if not r.passed}


@pytest.mark.parametrize("variant", list(WRONG), ids=[v.id for v in WRONG])
def test_each_mistake_fails_its_check(variant, tmp_path):
    results = grade_path(variant.write(str(tmp_path)), only=["training"])
    assert failed(results) == WRONG[variant], {i: r.message for i, r in results.items() if not r.passed}
    for i in WRONG[variant]:
        assert "LeNet-BN with your BatchNorm" in results[i].message and "Hint" in results[i].message


def test_an_untouched_stub_fails_every_training_check_without_a_traceback():
    stub = os.path.join(os.path.dirname(REFERENCE), "stub.py")
    results = grade_path(stub, only=["training"])
    assert failed(results) == set(IDS)
    assert all("not implemented yet" in r.message and "Traceback" not in r.message for r in results.values())


# ---- judges fed with fake probe results (what needs a GPU to happen for real) -------------------------

def fake_plan():
    return training_ref.plan("cpu")


def test_statistics_left_on_the_cpu_fail_on_device():
    devices = {"net[0].weight": "cuda:0", "net[1].gamma": "cuda:0", "net[1].moving_mean": "cpu",
               "net[1].moving_var": "cpu"}
    with pytest.raises(Fail) as err:
        checks.judge_devices(fake_plan(), {"device": "cuda:0", "devices": devices})
    message = str(err.value)
    assert "net[1].moving_mean (cpu)" in message and "net[1].moving_var (cpu)" in message
    assert "net[1].gamma" not in message and "register_buffer" in message
    all_there = dict(devices, **{"net[1].moving_mean": "cuda:0", "net[1].moving_var": "cuda:0"})
    assert "on cuda:0" in checks.judge_devices(fake_plan(), {"device": "cuda:0", "devices": all_there})


def test_a_device_mismatch_crash_gets_the_device_hint():
    message = checks.failure_message("RuntimeError: Expected all tensors to be on the same device, but found at "
                                     "least two devices, cuda:0 and cpu! (at your code, line 3)", fake_plan())
    assert "register_buffer" in message and "X.device" in message


def graph(with_history=(), nodes=0, steps=(1, 2, 5, 10, 40, 80)):
    return [{"step": s, "with_history": list(with_history), "nodes": nodes * s} for s in steps]


def test_growing_gpu_memory_fails_no_graph_growth():
    steady = [10_000_000] * 80
    assert "GPU memory steady" in checks.judge_graph(fake_plan(), {"graph": graph(), "cuda_memory": steady})
    growing = [10_000_000 + 100_000 * s for s in range(80)]
    with pytest.raises(Fail, match=r"GPU memory in use grew by 7\.4 MiB between step 2 and step 80"):
        checks.judge_graph(fake_plan(), {"graph": graph(), "cuda_memory": growing})
    history = {"graph": graph(["net[1].moving_mean"], nodes=10), "cuda_memory": []}
    with pytest.raises(Fail, match=r"net\[1\]\.moving_mean carries autograd history.*10 after step 1.*800 after step 80"):
        checks.judge_graph(fake_plan(), history)


def test_loss_hints_tell_forward_from_learning_problems():
    plan = fake_plan()
    ref = [2.3, 2.2, 2.1]
    with pytest.raises(Fail, match="very first loss differs"):
        checks.judge_losses(plan, {"losses": [2.5, 2.2, 2.1]}, ref)
    with pytest.raises(Fail, match=r"step 3 is 2\.3.*steps 1-2 matched.*nn\.Parameters"):
        checks.judge_losses(plan, {"losses": [2.3, 2.2, 2.3]}, ref)
    with pytest.raises(Fail, match=r"step 2 is nan.*sqrt\(var \+ eps\)"):
        checks.judge_losses(plan, {"losses": [2.3, float("nan"), 2.1]}, ref)
    assert "match the reference" in checks.judge_losses(plan, {"losses": [2.3005, 2.2, 2.1, 9.0]}, ref)


def test_eval_judge_names_the_failing_situation():
    base = torch.randn(64, 10, dtype=torch.float64)

    def returned(t):
        return Returned(t.float(), False, False, "cpu")

    outputs = {"first": base, "again": base, "no_grad": base, "mixed": base.clone(), "alone": base[:1]}
    outputs["mixed"][train_probe.MIX_ROW] = base[0]
    ok = {k: returned(v) for k, v in outputs.items()}
    judge = {"first": base.float().double()}
    assert "deterministic" in checks.judge_eval(fake_plan(), {"eval": ok, "eval_error": None, "judge": judge})
    with pytest.raises(Fail, match="batch of one"):
        checks.judge_eval(fake_plan(), {"eval": dict(ok, alone=returned(base[:1] + 0.5)), "eval_error": None,
                                        "judge": judge})
    with pytest.raises(Fail, match="passed twice"):
        checks.judge_eval(fake_plan(), {"eval": dict(ok, again=returned(base + 0.01)), "eval_error": None,
                                        "judge": judge})
    # consistent with itself, but not what the returned weights and moving statistics give
    with pytest.raises(Fail, match="differ from what the trained weights and your layers' own moving statistics"):
        checks.judge_eval(fake_plan(), {"eval": ok, "eval_error": None, "judge": {"first": base + 0.1}})
    with pytest.raises(Fail, match="fails in eval\\(\\) mode after training: boom"):
        checks.judge_eval(fake_plan(), {"eval": None, "eval_error": "boom"})


class NoGpuWorker:
    """A Student whose process sees no GPU: refuses CUDA, returns a stub result on the CPU."""

    def __init__(self):
        self.devices = []

    def probe(self, name, **kwargs):
        from autograder.core.student import StudentError
        self.devices.append(kwargs["device"])
        if kwargs["device"] == "cuda":
            raise StudentError(f"the grader asked to train on CUDA, but {train_probe.NO_GPU}")
        return {"device": "cpu"}


@pytest.fixture()
def small_cuda_plan(monkeypatch):
    """Pretend PyTorch sees a GPU in the grader, with a CPU-sized CUDA budget (no 60,000-image data set)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(training_ref.BUDGETS, "cuda", training_ref.BUDGETS["cpu"])
    training_ref.plan.cache_clear()
    yield
    training_ref.plan.cache_clear()


def test_auto_falls_back_to_the_cpu_when_the_worker_sees_no_gpu(small_cuda_plan):
    student = NoGpuWorker()
    plan, result, error = checks.probe_training(student, training_ref.choose_device())
    assert student.devices == ["cuda", "cpu"] and plan.device == "cpu" and result == {"device": "cpu"} and not error


def test_explicit_cuda_does_not_fall_back(small_cuda_plan, monkeypatch):
    monkeypatch.setenv(training_ref.DEVICE_ENV, "cuda")
    student = NoGpuWorker()
    with pytest.raises(Exception, match="sees no GPU"):
        checks.training_run(student)
    assert student.devices == ["cuda"]


# ---- evidence: what the worker claims about a run is checked, never believed --------------------------

class Forging(InProcessStudent):
    """A Student whose training probe answer is rewritten on the way back, as code in the worker could."""

    def __init__(self, path, forge):
        super().__init__(path)
        self.forge = forge

    def probe(self, probe_name, /, **kwargs):
        answer = super().probe(probe_name, **kwargs)
        return self.forge(answer) if probe_name == "train" else answer


def never_updated(tmp_path):
    variant = next(v for v in WRONG if v.id == "training_moving_never_updated")
    return variant.write(str(tmp_path))


def test_the_accuracy_is_the_judges_whatever_the_run_claims(tmp_path):
    def forge(result):
        return dict(result, correct=result["total"], judge={"correct": result["total"], "state_error": None})
    student = Forging(never_updated(tmp_path), forge)
    try:
        results, _ = runner.grade(student, runner.selected_checks(True, ["training.accuracy"]))
    finally:
        student.close()
    message = results[0].message
    assert not results[0].passed
    accuracy = float(message.split("reaches ")[1].split("%")[0])
    assert 12 <= accuracy <= 35, message       # a BN that never updates its statistics: about 21%


def test_a_run_that_is_not_the_students_code_fails_every_training_check(tmp_path):
    """The reference's run handed in for a BatchNorm that does not normalise: the grader's own first loss,
    computed with the student's BatchNorm, differs from the run's."""
    reference = InProcessStudent(REFERENCE)
    try:
        honest = checks.probe_training(reference, "cpu")[1]
    finally:
        reference.close()
    identity = Variant("training_identity", "training", "BatchNorm returns its input", append=(
        "class BatchNorm(nn.Module):\n    def __init__(self, num_features, num_dims):\n        super().__init__()\n"
        "        self.gamma = nn.Parameter(torch.ones(num_features))\n\n    def forward(self, X):\n        return X\n"))
    student = Forging(identity.write(str(tmp_path)), lambda result: honest)
    try:
        results, _ = runner.grade(student, runner.selected_checks(True, ["training"]))
    finally:
        student.close()
    assert failed({r.id: r for r in results}) == set(IDS)
    assert all("the run is not what your code computes" in r.message for r in results)

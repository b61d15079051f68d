"""What the grader does to be fast (issue 14) changes no verdict.

- Probes run with a stand-in for ``torch._dynamo`` (``student_side.base.without_dynamo_import``):
  grading never imports TorchDynamo, and a submission that compiles or configures it still works.
- ``student_side.base.backward`` gives the gradients ``Tensor.backward(grad)`` gives, bit for bit.
- A piece's preparation (``check.prepares``: the training plan and reference losses) runs beside the
  worker; a preparation that fails changes nothing but the time.
- ``python -m autograder`` leaves with ``os._exit``: its exit status and reports are as before
  (tests/test_cli.py covers the reports).
"""
import os
import subprocess
import sys

import pytest
import torch

from autograder.core import check, runner
from autograder.student_side import base
from conftest import REFERENCE, ROOT

pytestmark = pytest.mark.xdist_group("test_fast_paths")


def run_python(code):
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_grading_every_check_never_imports_torchdynamo():
    """Every probe and judge, the meta-device checks included, in one fresh process."""
    last = run_python("import sys, io, contextlib\n"
                      "from autograder.core import runner\n"
                      "from conftest import REFERENCE\n"
                      "with contextlib.redirect_stdout(io.StringIO()):\n"
                      "    g = runner.grade_submission(REFERENCE, sandboxed=False)\n"
                      "print(sum(r.score for r in g.results), sum(r.max_score for r in g.results),"
                      " 'torch._dynamo' in sys.modules)")
    score, total, imported = last.split()
    assert score == total and imported == "False", last


def test_a_probe_may_compile_and_configure_torchdynamo():
    """Inside the stand-in's window, torch.compile and torch._dynamo.config reach the real module."""
    last = run_python("import sys, torch\n"
                      "from autograder.student_side.base import without_dynamo_import\n"
                      "with without_dynamo_import():\n"
                      "    on_meta = torch.zeros(4, 3, device='meta').mean(dim=0)\n"
                      "    torch._dynamo.config.suppress_errors = False\n"
                      "    y = torch.compile(lambda t: t * 2 + 1, backend='eager')(torch.ones(3))\n"
                      "real = sys.modules['torch._dynamo']\n"
                      "print(tuple(on_meta.shape), y.tolist(), hasattr(real, 'optimize'), torch._dynamo is real)")
    assert last == "(3,) [3.0, 3.0, 3.0] True True", last


def test_the_stand_in_is_gone_after_a_probe():
    if "torch._dynamo" in sys.modules:
        pytest.skip("TorchDynamo was imported in this test process already")
    with base.without_dynamo_import():
        assert type(sys.modules["torch._dynamo"]).__name__ == "module"
        torch.zeros(2, 3, device="meta").var(dim=0)
    assert "torch._dynamo" not in sys.modules and "_dynamo" not in torch.__dict__


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_gives_the_gradients_of_tensor_backward_bit_for_bit(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 4, 4, generator=g, dtype=dtype)
    w = torch.randn(3, 1, 1, generator=g, dtype=dtype)
    grad = torch.randn(8, 3, 4, 4, generator=g, dtype=dtype)
    grads = []
    for how in ("torch", "ours"):
        xs, ws = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        y = (xs - xs.mean(dim=(0, 2, 3), keepdim=True)) / (xs.var(dim=(0, 2, 3), keepdim=True) + 1e-5).sqrt() * ws
        y.backward(grad) if how == "torch" else base.backward(y, grad)
        grads.append((xs.grad, ws.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_backward_with_a_gradient_of_another_shape_raises_pytorchs_error():
    y = torch.ones(3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="shape"):
        base.backward(y, torch.ones(4))


def test_a_failing_preparation_changes_no_result(monkeypatch):
    """The training checks compute what the preparation would have (and say what went wrong) themselves."""
    graded = runner.grade_submission(REFERENCE, only=["training"], side_worker=False)
    assert all(r.passed for r in graded.results), [r.message for r in graded.results]

    def broken(device):
        raise RuntimeError("a preparation that fails")
    monkeypatch.setitem(check.PREPARATIONS, "training", broken)
    again = runner.grade_submission(REFERENCE, only=["training"], side_worker=False)
    assert [(r.id, r.score, r.message) for r in again.results] == [(r.id, r.score, r.message) for r in graded.results]


def test_preparations_are_started_for_the_pieces_graded_only():
    checks = runner.selected_checks(True, only=["batch_norm", "training"])
    with runner.preparing(checks, "cpu") as prepared:
        assert set(prepared) == {"training"}
        prepared["training"].result(timeout=300)
    with runner.preparing(runner.selected_checks(True, only=["quiz"]), "cpu") as prepared:
        assert prepared == {}


def test_cli_exit_status_survives_the_fast_exit(tmp_path):
    usage = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "missing")], cwd=ROOT,
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "does not exist" in usage.stderr
    results = tmp_path / "r.json"
    ok = subprocess.run([sys.executable, "-m", "autograder", "grade", REFERENCE, "--only", "quiz", "--results",
                         str(results)], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "quiz" in ok.stdout and results.stat().st_size > 0, ok.stderr[-2000:]


def test_what_the_stand_in_answered_is_not_kept_past_the_probe():
    """torch._disable_dynamo keeps disable()'s answer on the function; the stand-in's answer (the function
    itself) must not outlive the probe, or a later torch.compile would trace into PyTorch's own kernels."""
    last = run_python("import sys, torch, torch._compile as c\n"
                      "from autograder.student_side.base import without_dynamo_import\n"
                      "def raw(x):\n"
                      "    return x + 1\n"
                      "wrapped = c._disable_dynamo(raw)\n"
                      "with without_dynamo_import():\n"
                      "    inside = (wrapped(1), raw.__dict__.get('__dynamo_disable') is raw)\n"
                      "after = ('__dynamo_disable' in raw.__dict__, 'torch._dynamo' in sys.modules)\n"
                      "wrapped(1)\n"
                      "print(inside, after, raw.__dict__.get('__dynamo_disable') not in (None, raw))")
    assert last == "(2, True) (False, False) True", last

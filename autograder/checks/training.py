"""Public checks: LeNet-BN built with the student's ``BatchNorm`` trains like a correct batch norm.

One training run per submission (the probe ``train``, cached here) feeds five
judges. The grader sends the initial weights, the images and the batch order;
the run is short (CPU: one pass over 5,120 images in batches of 64; CUDA: two
epochs of 60,000 in batches of 256; both SGD with lr 1.0, d2l's setting), on
CUDA when there is a GPU, else on the CPU, or as ``--device`` / ``$BNLAB_DEVICE``
says (``training_ref.choose_device``).

- loss_matches_reference: the first 20 training losses equal those of the same
  network built with PyTorch's batch norm, from the same weights and batches,
  within 1e-3 + 1e-3·|loss| (correct layers agree to 1e-6);
- accuracy: test accuracy in eval() mode clears a stated threshold; the GRADER
  computes it, with its own LeNet-BN (PyTorch's layers) holding the weights and
  moving statistics the run returned (``training_ref.judge_network``);
- on_device: after the first step every parameter, buffer and tensor attribute
  is on the training device;
- no_graph_growth: the moving statistics carry no autograd history (a history
  chains every step's graph to the next: memory grows step after step);
- eval_deterministic: eval() gives the same output for the same batch twice,
  under torch.no_grad() or not, and for an image whatever else is in its batch,
  and that output is what the returned weights and moving statistics give.

Evidence (docs/security.md): the run happens in the student's process, so the
grader verifies what it can. Before any judge sees the run, the grader recomputes
its first training loss itself: the network's conv/linear layers in the grader,
each batch norm by the student's ``BatchNorm`` through the ordinary ``module``
probe, on the first batch; a run whose first loss differs is not the student's
(every training check fails). Accuracy and eval() outputs come from the returned
state, never from a number the run reports. Devices and autograd history remain
observations (a flagged submission scores zero here: ``runner.grade``).

Public, so students can run it: nothing here gives the answer away (the
reference is PyTorch's own layer) and a failed run is worth seeing before the
deadline. Each passing judge returns a note naming the data set used.
"""
import math

import torch

from ..reference import training as training_ref
from ..core.check import Fail, check, fmt, prepares
from ..core.student import OBSERVING_PROBES, Returned, StudentError
from ..student_side import train_probe

PIECE = "training"
HINT_DEVICE = ("Plain tensor attributes are not moved by net.to(device): register the moving statistics with "
               "self.register_buffer(...), or move them to X.device in forward (as d2l does).")

_LAST = {"key": None, "run": None}


def cache_key(student):
    """What identifies the code under test: the Student, or, for a notebook kernel (a new Student
    per test cell), the BatchNorm and batch_norm objects it defines."""
    names = getattr(getattr(student, "session", None), "names", None)
    if isinstance(names, dict) and names.get("BatchNorm") is not None:
        return (names.get("BatchNorm"), names.get("batch_norm"))
    return (student,)


def same_key(a, b):
    return a is not None and b is not None and len(a) == len(b) and all(x is y for x, y in zip(a, b))


def training_run(student):
    """(plan, result) of the student's training run; computed once per submission (last one kept).
    ``result["judge"]`` is the grader's own evidence (``judged``), never what the worker sent."""
    key = cache_key(student)
    if not same_key(_LAST["key"], key):
        _LAST["key"], _LAST["run"] = None, None
        try:
            run = probe_training(student, training_ref.choose_device(getattr(student, "device", None)))
        except training_ref.DeviceError as exc:
            run = (None, None, f"the grader cannot train here: {exc} (not a problem with your code)")
        if run[2] is None and isinstance(run[1], dict):
            run = (run[0], dict(run[1], judge=judged(student, run[0], run[1])), None)
        _LAST["key"], _LAST["run"] = key, run
    observe = getattr(student, "observe", None)
    if observe is not None:     # every training check relies on this run, also when it comes from the cache
        observe(OBSERVING_PROBES["train"])
    plan, result, error = _LAST["run"]
    if error and plan is None:
        raise Fail(error)
    if error:
        raise StudentError(error)   # the runner adds what loading the submission reported
    if not isinstance(result, dict):
        raise Fail("LeNet-BN training: the training probe sent back something unexpected.")
    problem = result["judge"].get("run_error") if isinstance(result.get("judge"), dict) else None
    if problem:
        raise Fail(problem)
    return plan, result


# ---- the grader's own evidence ----------------------------------------------------------------------

def first_step_loss(student, plan):
    """The first training loss, computed here: LeNet-BN's conv/linear layers in the grader (the plan's
    initial weights), each batch norm by the student's ``BatchNorm`` through the ``module`` probe (training
    mode, a fresh layer as at the start of training), on the first batch. Raises StudentError."""
    kwargs = plan.kwargs
    with torch.random.fork_rng(devices=[]):     # building layers draws random numbers: keep ours as they were
        net = train_probe.lenet_bn(lambda features, dims: torch.nn.Identity())
    init = list(kwargs["init"])
    with torch.no_grad():
        for k, i in enumerate(train_probe.WEIGHTED):
            net[i].weight.copy_(init[2 * k])
            net[i].bias.copy_(init[2 * k + 1])
    idx = kwargs["order"][0]
    h = train_probe.images(kwargs["train_x"][idx], "cpu")
    norms = {index: (features, dims) for index, features, dims in train_probe.NORMS}
    for i, layer in enumerate(net):        # not under no_grad: an in-process probe runs in this thread
        if i not in norms:
            with torch.no_grad():
                h = layer(h)
            continue
        answer = student.probe("module", name="BatchNorm", ctor_args=list(norms[i]), seed=0,
                               ops=[{"op": "train"}, {"op": "forward", "x": h.contiguous()}])
        y = answer[1].get("y") if isinstance(answer, list) and len(answer) == 2 and \
            isinstance(answer[1], dict) else None
        if not isinstance(y, Returned) or tuple(y.value.shape) != tuple(h.shape):
            raise StudentError(f"BatchNorm{norms[i]} in training mode did not return a tensor of shape "
                               f"{tuple(h.shape)} for the first batch's activations")
        h = y.value.float()
    return float(torch.nn.functional.cross_entropy(h.double(), kwargs["train_y"][idx]))


def judged(student, plan, result):
    """The grader's evidence about a run: ``run_error`` (the run is not what the student's BatchNorm gives:
    every training check fails), ``first_loss``, ``correct`` (test accuracy by the judge's network holding
    the returned state), ``first`` (its float64 eval() logits), ``state_error``."""
    judge = {"run_error": None, "first_loss": None, "correct": None, "first": None, "state_error": None}
    try:
        mine = first_step_loss(student, plan)
    except StudentError as exc:
        judge["run_error"] = failure_message(str(exc), plan)
        return judge
    judge["first_loss"] = mine
    losses = result.get("losses")
    theirs = losses[0] if isinstance(losses, list) and losses else None
    finite = [isinstance(x, float) and math.isfinite(x) for x in (mine, theirs)]
    if not isinstance(theirs, float) or (any(finite) and not (
            all(finite) and abs(theirs - mine) <= training_ref.LOSS_ATOL + training_ref.LOSS_RTOL * abs(mine))):
        judge["run_error"] = (f"LeNet-BN training: the training run reported a first loss of {theirs!r:.12}, but "
                              f"the grader, running the same network on the same first batch with your BatchNorm, "
                              f"gets {fmt(mine)}: the run is not what your code computes, so no training check "
                              f"can be graded.")
        return judge
    state = result.get("state")
    try:
        if not isinstance(state, dict):
            raise training_ref.StateError("the training probe did not send the trained network back")
        weights = [w.value if isinstance(w, Returned) else None for w in state.get("weights") or []]
        norms = []
        for entry in state.get("norms") or []:
            tensors = [(str(n), str(kind), v.requires_grad and not v.grad_fn, v.value)     # leaf requiring grad
                       for n, kind, v in entry.get("tensors", [])
                       if isinstance(v, Returned)]
            eps = entry.get("eps")
            norms.append((tensors, eps if isinstance(eps, float) and 0 < eps < 1 else None))
        if len(weights) != 2 * len(train_probe.WEIGHTED) or any(w is None for w in weights) or \
                len(norms) != len(train_probe.NORMS):
            raise training_ref.StateError("the trained network came back incomplete")
        judge["correct"], judge["first"] = training_ref.judge_evaluation(plan, weights, norms)
    except (training_ref.StateError, ValueError, TypeError, RuntimeError) as exc:
        judge["state_error"] = str(exc)
    return judge


def probe_training(student, device):
    """(plan, result, error message). With device 'auto' resolved to CUDA but a worker that sees no GPU
    (a sandbox without the GPU's device files), the check runs on the CPU budget instead."""
    plan = training_ref.plan(device)
    try:
        return plan, student.probe("train", **plan.kwargs), None
    except StudentError as exc:
        if device == "cuda" and train_probe.NO_GPU in str(exc) and training_ref.requested_device(getattr(student, "device", None)) == "auto":
            return probe_training(student, "cpu")
        return plan, None, failure_message(str(exc), plan)


def failure_message(message, plan):
    text = f"LeNet-BN with your BatchNorm could not be trained on {plan.device}: {message}."
    if "same device" in message or ("cuda" in message and "cpu" in message):
        text += " " + HINT_DEVICE
    elif "not implemented yet" in message:
        text = f"LeNet-BN with your BatchNorm: {message}."
    return text


def run_note(plan):
    b = plan.budget
    return (f"{plan.budget.steps} SGD steps (batch {b.batch_size}, lr {b.lr:g}) on {plan.device}; "
            f"data: {plan.description}")


def field(result, key, kind):
    value = result.get(key)
    if not isinstance(value, kind):
        raise Fail(f"LeNet-BN training: the training probe's `{key}` came back as {type(value).__name__}.")
    return value


# ---- the judges (pure functions of the plan and the probe's result, so tests can feed them) ----

def judge_losses(plan, result, reference):
    got = field(result, "losses", list)
    n = len(reference)
    if len(got) < n:
        raise Fail(f"LeNet-BN training: expected at least {n} losses, got {len(got)}.")
    for step, (g, r) in enumerate(zip(got[:n], reference), start=1):
        if not isinstance(g, float) or not math.isfinite(g):
            raise Fail(f"LeNet-BN with your BatchNorm: the training loss at step {step} is {g} (not a finite "
                       f"number). Hint: divide by sqrt(var + eps), not by sqrt(var) or var; normalise with the "
                       f"batch statistics in training mode.")
        if abs(g - r) > training_ref.LOSS_ATOL + training_ref.LOSS_RTOL * abs(r):
            if step == 1:
                hint = ("Hint: the very first loss differs, so the training-mode forward pass is off: use the batch "
                        "mean and the biased batch variance (divide by N, not N-1) over dim 0 for 2-D input and "
                        "over dims (0, 2, 3) for 4-D input, per feature/channel; X_hat = (X - mean) / "
                        "sqrt(var + eps); Y = gamma * X_hat + beta, with gamma = 1 and beta = 0 at the start.")
            else:
                hint = ("Hint: the first steps agree and later ones drift apart, so the difference is small at "
                        "first or grows through learning: normalise with the biased variance (divide by N, not "
                        "N-1) and sqrt(var + eps); make gamma and beta nn.Parameters (so the optimiser updates "
                        "them); let gradients flow through the batch mean and variance (no .detach() there); in "
                        "training mode normalise with the batch statistics, never the moving ones.")
            raise Fail(f"LeNet-BN with your BatchNorm, trained from the same initial weights on the same batches as "
                       f"a correct batch norm: the loss at step {step} is {fmt(g)}, expected {fmt(r)} (tolerance "
                       f"{training_ref.LOSS_ATOL:g} + {training_ref.LOSS_RTOL:g}·|expected|; steps 1-{step - 1} "
                       f"matched). {hint}")
    return f"first {n} training losses match the reference; {run_note(plan)}"


def judge_state(result):
    """The grader's evidence (``judged``); Fail when the trained state could not be evaluated."""
    judge = result.get("judge")
    if not isinstance(judge, dict):
        raise Fail("LeNet-BN training: the grader has no evaluation of its own for this run.")
    if judge.get("state_error"):
        raise Fail(f"LeNet-BN with your BatchNorm: the grader could not evaluate the trained network: "
                   f"{judge['state_error']}. Hint: keep gamma and beta as nn.Parameters and the moving mean and "
                   f"variance as tensors of the layer (d2l: self.moving_mean, self.moving_var), one value per "
                   f"feature/channel.")
    return judge


def judge_accuracy(plan, result):
    eval_failure(result)
    judge = judge_state(result)
    correct, total = judge.get("correct"), len(plan.kwargs["test_y"])
    if not isinstance(correct, int) or total <= 0:
        raise Fail("LeNet-BN training: the grader could not compute the test accuracy.")
    acc, threshold = correct / total, plan.threshold
    if acc < threshold:
        raise Fail(f"LeNet-BN with your BatchNorm reaches {acc:.1%} test accuracy in eval() mode after "
                   f"{run_note(plan)}; at least {threshold:.0%} was expected (an untrained network scores 10%). "
                   f"Hint: in eval() mode the layer must normalise with the moving statistics, and training must "
                   f"keep them up to date: moving = momentum * moving + (1 - momentum) * batch with momentum 0.9 "
                   f"(d2l's convention: keep 0.9 of the OLD value), moving mean starting at 0 and moving "
                   f"variance at 1.")
    return f"test accuracy {acc:.1%} (threshold {threshold:.0%}) after {run_note(plan)}"


def judge_devices(plan, result):
    device = field(result, "device", str)
    devices = field(result, "devices", dict)
    if not devices:
        raise Fail("LeNet-BN training: the training probe did not report where the network's tensors live.")
    wrong = sorted(f"{name} ({where})" for name, where in devices.items() if where != device)
    if wrong:
        shown = ", ".join(wrong[:6]) + (f" and {len(wrong) - 6} more" if len(wrong) > 6 else "")
        raise Fail(f"LeNet-BN with your BatchNorm, after the first training step on {device}: these tensors are "
                   f"not on {device}: {shown}. {HINT_DEVICE}")
    return f"all {len(devices)} parameters and statistics on {device} after the first step"


def judge_graph(plan, result):
    records = field(result, "graph", list)
    if not records or not all(isinstance(r, dict) for r in records):
        raise Fail("LeNet-BN training: the training probe did not report the autograd state.")
    memory = result.get("cuda_memory") or []
    for r in records:
        names = sorted(set(r.get("with_history") or []))
        if names:
            growth = ", ".join(f"{x.get('nodes')} after step {x.get('step')}" for x in records)
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            raise Fail(f"LeNet-BN with your BatchNorm: after training step {r.get('step')}, "
                       f"{shown} carr{'ies' if len(names) == 1 else 'y'} "
                       f"autograd history (autograd nodes hanging off the statistics: {growth}). Each step's update "
                       f"chains the new batch's graph to the old statistics, so memory grows step after step. "
                       f"Hint: update the moving statistics from mean.detach() / var.detach() (or under "
                       f"torch.no_grad()); d2l returns moving_mean.data, moving_var.data.")
    if len(memory) >= 4:
        growth = memory[-1] - memory[1]
        if growth > training_ref.CUDA_GROWTH_BYTES:
            raise Fail(f"LeNet-BN with your BatchNorm: GPU memory in use grew by {growth / 2**20:.1f} MiB between "
                       f"step 2 and step {len(memory)} ({memory[1]} -> {memory[-1]} bytes). Something keeps every "
                       f"step's tensors alive: do not store the batch statistics or outputs in lists, and detach "
                       f"what the layer keeps.")
    return "moving statistics carry no autograd history" + (
        f"; GPU memory steady ({memory[1]} -> {memory[-1]} bytes)" if len(memory) >= 4 else "")


def eval_failure(result):
    if result.get("eval_error"):
        raise Fail(f"LeNet-BN with your BatchNorm fails in eval() mode after training: {result['eval_error']}.")
    if not isinstance(result.get("eval"), dict):
        raise Fail("LeNet-BN training: the training probe did not report the eval() outputs.")


def output(result, key):
    value = result["eval"].get(key)
    if not isinstance(value, Returned):
        raise Fail(f"LeNet-BN in eval() mode: the network's output `{key}` is not a tensor.")
    t = value.value.double()
    if not torch.isfinite(t).all():
        raise Fail(f"LeNet-BN with your BatchNorm in eval() mode gives NaN or infinite outputs. Hint: normalise "
                   f"with sqrt(moving_var + eps).")
    return t


def judge_eval(plan, result):
    eval_failure(result)
    first = output(result, "first")
    n, row = train_probe.EVAL_BATCH, train_probe.MIX_ROW
    cases = [
        ("again", slice(None), first,
         "the same batch, passed twice in eval() mode, gives different outputs. Hint: eval() must not update the "
         "moving statistics (prediction returns them unchanged)."),
        ("no_grad", slice(None), first,
         "the same batch gives different outputs in eval() mode with and without torch.no_grad(). Hint: choose "
         "the mode with self.training (set by net.train() / net.eval()), not torch.is_grad_enabled()."),
        ("mixed", slice(row, row + 1), first[:1],
         f"test image 0 gives a different output when it sits in another batch (as row {row} of {n}). Hint: in "
         f"eval() mode normalise with the moving statistics, not the batch's own mean and variance (choose the "
         f"mode with self.training, not torch.is_grad_enabled())."),
        ("alone", slice(None), first[:1],
         "test image 0 gives a different output in a batch of one than in a batch of 64. Hint: in eval() mode "
         "normalise with the moving statistics, not the batch's own mean and variance."),
    ]
    for key, rows, expected, message in cases:
        got = output(result, key)
        if tuple(got.shape) != (n if key in ("again", "no_grad", "mixed") else 1, 10):
            raise Fail(f"LeNet-BN in eval() mode: output `{key}` has shape {tuple(got.shape)}.")
        got = got[rows]
        err = (got - expected).abs()
        allowed = training_ref.EVAL_ATOL + training_ref.EVAL_RTOL * expected.abs()
        if bool((err > allowed).any()):
            raise Fail(f"LeNet-BN with your BatchNorm: {message} (largest difference {fmt(err.max())} in the "
                       f"logits, tolerance {training_ref.EVAL_ATOL:g} + {training_ref.EVAL_RTOL:g}·|value|)")
    mine = judge_state(result).get("first")
    if not isinstance(mine, torch.Tensor) or tuple(mine.shape) != tuple(first.shape):
        raise Fail("LeNet-BN training: the grader could not compute the eval() outputs itself.")
    err = (first - mine).abs()
    if bool((err > training_ref.JUDGE_EVAL_ATOL + training_ref.JUDGE_EVAL_RTOL * mine.abs()).any()):
        raise Fail(f"LeNet-BN with your BatchNorm in eval() mode: the outputs for test images 0-{n - 1} differ from "
                   f"what the trained weights and your layers' own moving statistics give (largest difference "
                   f"{fmt(err.max())} in the logits, tolerance {training_ref.JUDGE_EVAL_ATOL:g} + "
                   f"{training_ref.JUDGE_EVAL_RTOL:g}·|value|). Hint: in eval() mode compute gamma * (X - "
                   f"moving_mean) / sqrt(moving_var + eps) + beta with the stored moving statistics, nothing else.")
    return "eval() outputs are deterministic, independent of the rest of the batch, and follow the trained state"


# ---- the checks ------------------------------------------------------------------------------

@prepares(PIECE)
def prepare(device):
    """The plan (data, initial weights, batch order) and the reference losses, cached before the run
    needs them: about 0.5 s of the grader's CPU on 2 cores that then overlaps the worker's."""
    training_ref.reference_losses(training_ref.plan(training_ref.choose_device(device)).device)


@check("training.loss_matches_reference", PIECE, 2,
       "LeNet-BN with your BatchNorm: the first 20 training losses match a correct batch norm's")
def loss_matches_reference(student):
    plan, result = training_run(student)
    return judge_losses(plan, result, training_ref.reference_losses(plan.device))


@check("training.accuracy", PIECE, 2, "LeNet-BN with your BatchNorm: test accuracy after a short training run")
def accuracy(student):
    return judge_accuracy(*training_run(student))


@check("training.on_device", PIECE, 1, "LeNet-BN with your BatchNorm: parameters and statistics on the training device")
def on_device(student):
    return judge_devices(*training_run(student))


@check("training.no_graph_growth", PIECE, 1, "LeNet-BN with your BatchNorm: no autograd history kept across steps")
def no_graph_growth(student):
    return judge_graph(*training_run(student))


@check("training.eval_deterministic", PIECE, 1,
       "LeNet-BN with your BatchNorm: eval() output is deterministic and independent of the batch")
def eval_deterministic(student):
    return judge_eval(*training_run(student))

"""The training check's cost: the whole check through the CLI, its parts, and from-scratch vs PyTorch's batch norm.

Reports, in one run:
1. the whole check as a student's submission meets it: ``python -m autograder grade SUBMISSION
   --only training`` (process start, sandboxed worker, CUDA init where there is a GPU, data,
   training, evaluation), median of ``--runs``;
2. its parts in this process: the plan (data set + initial weights), the student's run (probe),
   the reference losses; the data set used, the test accuracy reached and the threshold;
3. the ratio of the training loop's time with the reference solution's from-scratch ``BatchNorm``
   to the same loop with ``nn.BatchNorm2d`` / ``nn.BatchNorm1d``: the same plan, the same code
   (``train_probe.train``), alternated A B A B, medians.

Usage: python benchmarks/training_check.py [--device auto|cpu|cuda] [--runs N] [--threads N] [SUBMISSION]
On the CPU the loop runs with 1 thread by default, as in the sandboxed worker (OMP_NUM_THREADS=1).
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from autograder.reference import training as training_ref  # noqa: E402
from autograder.student_side.loader import load_submission  # noqa: E402
from autograder.student_side import train_probe  # noqa: E402

REFERENCE = os.path.join(ROOT, "tests", "submissions", "reference.py")


def whole_check(submission, device, runs):
    """Wall seconds and CPU seconds (all processes: grader, sandbox, worker) per run of the CLI."""
    cmd = [sys.executable, "-m", "autograder", "grade", submission, "--only", "training", "--quiet"]
    env = dict(os.environ, BNLAB_DEVICE=device)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("submission", nargs="?", default=REFERENCE)
    parser.add_argument("--device", default="auto", choices=training_ref.DEVICE_CHOICES)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the in-process CPU runs")
    args = parser.parse_args()

    device = training_ref.choose_device(args.device)
    if device == "cpu":
        torch.set_num_threads(args.threads)
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else
                                 f" ({torch.get_num_threads()} thread(s) in process; the worker uses 1)"))

    times, cpus = whole_check(args.submission, device, args.runs)
    print(f"1. whole check (python -m autograder grade --only training): median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs); CPU time of all its processes: "
          f"median {statistics.median(cpus):.2f} s; load average now {os.getloadavg()[0]:.1f}")

    plan, t_plan = timed(lambda: training_ref.plan(device))
    names, errors = load_submission(args.submission)
    if errors:
        print("   loading the submission reported:", "; ".join(errors))
    student, t_student = timed(lambda: train_probe.train(names, **plan.kwargs))
    _, t_ref = timed(lambda: training_ref.reference_losses(device))
    b = plan.budget
    print(f"2. parts: plan (data + weights) {t_plan:.2f} s; student's run {t_student:.2f} s "
          f"(training {student['train_seconds']:.2f} s, {b.steps} steps of {b.batch_size}, "
          f"{b.steps * b.batch_size / student['train_seconds']:.0f} images/s); "
          f"reference losses ({training_ref.LOSS_STEPS} steps) {t_ref:.2f} s")
    print(f"   data: {plan.description}")
    acc = student["correct"] / student["total"]
    print(f"   test accuracy {acc:.1%} (threshold {plan.threshold:.0%})")

    scratch, torch_bn = [], []
    for _ in range(args.runs):
        scratch.append(training_ref.reference_run(plan, names["BatchNorm"], steps=b.steps)["train_seconds"])
        torch_bn.append(training_ref.reference_run(plan, training_ref.torch_batch_norm, steps=b.steps)["train_seconds"])
    a, t = statistics.median(scratch), statistics.median(torch_bn)
    print(f"3. training loop, {b.steps} steps: from-scratch BatchNorm median {a:.2f} s, nn.BatchNorm2d/1d median "
          f"{t:.2f} s; ratio {a / t:.2f}x")


if __name__ == "__main__":
    main()

"""Time to grade one submission on CPU, as a ratio to a bare `python -c "import torch"`, in one run.

Runs three commands in turn, round after round (A B C A B C ...), and reports
medians and ratios of medians:

    A  python -m autograder grade SUBMISSION --quiet            (the default: a second worker for the
                                                                 training checks only with 4+ cores)
    B  python -c "import torch"                                 (the floor: one interpreter and torch)
    C  the same grade with the other BNLAB_SIDE_WORKER setting  (what the default chose against)

Usage: python benchmarks/grade_one.py [SUBMISSION] [--runs N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env=None):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=dict(os.environ, **(env or {})))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("submission", nargs="?", default=os.path.join(ROOT, "solutions", "bn_resnet_densenet"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bare = [sys.executable, "-c", "import torch"]
    grade = [sys.executable, "-m", "autograder", "grade", args.submission, "--quiet"]
    sys.path.insert(0, ROOT)
    from autograder import course
    default = course.SETTINGS["side_worker"].default
    other = {"BNLAB_SIDE_WORKER": "0" if default else "1"}
    name = ("second worker", "one worker")
    timed(bare), timed(grade)  # warm-up: file cache
    a, b, c = [], [], []
    for _ in range(args.runs):
        a.append(timed(grade))
        b.append(timed(bare))
        c.append(timed(grade, other))
    ga, gb, gc = (statistics.median(x) for x in (a, b, c))
    here, there = name if default else name[::-1]
    print(f"{course.cores()} cores; default: {here}")
    print(f"grade one submission:          median {ga:.2f} s (min {min(a):.2f}, max {max(a):.2f})")
    print(f"  ... with {there + ':':20s}median {gc:.2f} s (min {min(c):.2f}, max {max(c):.2f})")
    print(f"python -c 'import torch':      median {gb:.2f} s (min {min(b):.2f}, max {max(b):.2f})")
    print(f"ratio: {ga / gb:.2f}x (target <= 2x); with {there}: {gc / gb:.2f}x")


if __name__ == "__main__":
    main()

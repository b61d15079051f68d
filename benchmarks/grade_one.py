"""Time to grade one submission on CPU, as a ratio to a bare `python -c "import torch"`, in one run.

Runs the two commands alternately (A B A B ...) and reports medians and the ratio
of medians. Usage: python benchmarks/grade_one.py [SUBMISSION] [--runs N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("submission", nargs="?", default=os.path.join(ROOT, "solutions", "bn_resnet_densenet"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bare = [sys.executable, "-c", "import torch"]
    grade = [sys.executable, "-m", "autograder", "grade", args.submission, "--quiet"]
    timed(bare), timed(grade)  # warm-up: file cache
    a, b = [], []
    for _ in range(args.runs):
        a.append(timed(grade))
        b.append(timed(bare))
    ga, gb = statistics.median(a), statistics.median(b)
    print(f"grade one submission: median {ga:.2f} s (min {min(a):.2f}, max {max(a):.2f})")
    print(f"python -c 'import torch': median {gb:.2f} s (min {min(b):.2f}, max {max(b):.2f})")
    print(f"ratio: {ga / gb:.2f}x (target <= 4x)")


if __name__ == "__main__":
    main()

"""What isolation costs: grade the reference through the CLI, in-process vs sandboxed.

    .venv/bin/python benchmarks/isolation_overhead.py [--repeat 3] [--only PIECES...]

Each run is a fresh ``python -m autograder grade`` (what CI pays, imports
included); the two modes alternate so machine load hits both alike, and the
medians are compared. Target: sandboxed <= 1.5 x in-process.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "tests", "submissions", "reference.py")


def cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant, the worker too
    return usage.ru_utime + usage.ru_stime


def grade_seconds(extra, only):
    """(wall seconds, CPU seconds of the whole process tree) for one CLI run."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "autograder", "grade", REFERENCE, "--quiet",
               "--results", os.path.join(out, "r.json"), *extra] + (["--only", *only] if only else [])
        start, cpu_start = time.perf_counter(), cpu()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start, cpu() - cpu_start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    inproc, boxed = [], []
    for _ in range(args.repeat):
        inproc.append(grade_seconds(["--in-process"], args.only))
        boxed.append(grade_seconds([], args.only))
    a, b = (statistics.median(w for w, _ in runs) for runs in (inproc, boxed))
    ca, cb = (statistics.median(c for _, c in runs) for runs in (inproc, boxed))
    for label, runs, wall, cpu_s in (("in-process", inproc, a, ca), ("sandboxed ", boxed, b, cb)):
        print(f"{label} : {wall:6.2f} s wall, {cpu_s:6.2f} s CPU  (wall of each run: "
              f"{', '.join(f'{w:.2f}' for w, _ in runs)})")
    print(f"ratio      : {b / a:6.2f} x wall (target <= 1.5), {cb / ca:.2f} x CPU")
    return 0 if b / a <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())

"""nbgrader autograde against the CLI, per student, on the same submitted folders, in one run.

    .venv/bin/python benchmarks/nbgrader_vs_cli.py [--runs 3] [--students reference untouched wrong_Residual]

Builds a temporary course (``tests/nbgrader_fixtures/course.py``: a copy of
``solutions/`` and ``nbgrader_config.py``, the grader linked), runs ``nbgrader
generate_assignment`` once and hands in the chosen students' notebooks (the
reference, the untouched release, wrong variants of the catalogue
``tests/variants_*.py``). Then, alternately (A B A B ...) for each student and run:

- A: ``python -m autograder grade gradebook/submitted/<s>/bn_resnet_densenet --quiet``
- B: ``nbgrader autograde bn_resnet_densenet --student <s> --force``

both as fresh processes, as an instructor types them (same probe timeout). Each run
ends with ``nbgrader autograde bn_resnet_densenet --force`` for the whole class
(nbgrader starts once: what a class costs per student), against that run's CLI
times added up. Printed: the median wall time of each per student, the ratios B / A
(target <= 1.5x), the class run against the CLI, and the load average: on a shared
machine read the ratios with it.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

TARGET = 1.5


PIECES = ("batch_norm", "BatchNorm", "Residual", "DenseBlock", "transition_block", "quiz")


def submission(student):
    """The notebooks of "reference", "untouched", or "wrong_<piece>" / "<variant id>" (the catalogue's first match)."""
    import importlib
    from nbgrader_fixtures import course
    if student == "reference":
        return course.reference_notebooks()
    if student == "untouched":
        return course.untouched_notebooks()
    wanted = student[len("wrong_"):] if student.startswith("wrong_") else student
    for piece in PIECES:
        for v in importlib.import_module(f"variants_{piece}").WRONG:
            if wanted in (v.id, v.piece):
                return course.variant_notebooks(v)
    raise SystemExit(f"unknown student {student!r}: reference, untouched, wrong_<piece> or a variant id")


def timed(cmd, cwd, env):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--students", nargs="*", default=["reference", "untouched", "wrong_Residual"])
    parser.add_argument("--probe-timeout", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary course")
    args = parser.parse_args()
    from nbgrader_fixtures import course

    base = tempfile.mkdtemp(prefix="bnlab-nbgrader-bench-")
    root = course.make_course(os.path.join(base, "course"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BNLAB_", "NBGRADER", "PYTHONPATH"))}
    env.update(OMP_NUM_THREADS="1", BNLAB_PROBE_TIMEOUT=f"{args.probe_timeout:g}")
    nbgrader = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    try:
        timed([nbgrader, "generate_assignment", course.ASSIGNMENT, "--force"], root, env)
        folders = {s: course.submit(root, s, submission(s)) for s in args.students}
        times = {s: {"cli": [], "nbgrader": []} for s in args.students}
        whole_class, cli_class = [], []
        for run in range(args.runs):
            for s, folder in folders.items():
                times[s]["cli"].append(timed([sys.executable, "-m", "autograder", "grade", folder, "--quiet",
                                              "--probe-timeout", f"{args.probe_timeout:g}"], ROOT, env))
                times[s]["nbgrader"].append(timed([nbgrader, "autograde", course.ASSIGNMENT, "--student", s,
                                                   "--force"], root, env))
            whole_class.append(timed([nbgrader, "autograde", course.ASSIGNMENT, "--force"], root, env))
            cli_class.append(sum(times[s]["cli"][-1] for s in args.students))
            print(f"run {run + 1} of {args.runs} done; load average {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if args.keep:
            print(f"course kept in {root}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\n{'student':<18} {'CLI grade (s)':>14} {'nbgrader autograde (s)':>23} {'ratio':>7}")
    ratios, cli_all, nb_all = [], [], []
    for s in args.students:
        a, b = statistics.median(times[s]["cli"]), statistics.median(times[s]["nbgrader"])
        ratios.append(b / a)
        cli_all += times[s]["cli"]
        nb_all += times[s]["nbgrader"]
        print(f"{s:<18} {a:>14.1f} {b:>23.1f} {b / a:>6.2f}x")
    overall = statistics.median(nb_all) / statistics.median(cli_all)
    print(f"{'all (medians)':<18} {statistics.median(cli_all):>14.1f} {statistics.median(nb_all):>23.1f} "
          f"{overall:>6.2f}x  (target <= {TARGET}x; {args.runs} runs each, alternating)")
    n = len(args.students)
    nb_class, cli_sum = statistics.median(whole_class), statistics.median(cli_class)
    class_ratio = nb_class / cli_sum
    print(f"class run, {n} students (medians): `nbgrader autograde --force` {nb_class:.1f} s "
          f"({nb_class / n:.1f} s per student), CLI one by one {cli_sum:.1f} s ({cli_sum / n:.1f} s per student): "
          f"{class_ratio:.2f}x")
    print(f"load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0 if max(overall, class_ratio) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

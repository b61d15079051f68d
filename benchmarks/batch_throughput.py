"""Batch grading throughput: N submissions with 1 worker, then with 2, in one run.

    .venv/bin/python benchmarks/batch_throughput.py [--count 100] [--sample 5] [--workers 1 2]

The N submissions are a mix of the catalogue, in a fixed order: the reference, the
stub, every WRONG and RIGHT variant of tests/variants_*.py, and the hostile files of
tests/hostile/ that cost no timeout (infinite loops, 64 GiB allocations, 50 MB of
prints and worker restarts per check are left out: they measure the limits, not the
grader). Each setting grades all N from scratch (a fresh out folder) through
``batch.grade_batch``, the code behind ``python -m autograder grade-batch``.

Reported: submissions per minute for each worker count, the speed-up of the largest
over 1 worker (target >= 1.8x on 2 free cores), and the cost of one submission in the
1-worker batch against grading one submission alone (``python -m autograder grade X``,
one process per submission, over ``--sample`` submissions spread through the mix;
target <= 1.2x). The load average is printed with each phase: on a shared machine,
read the ratios with it.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

CHEAP_HOSTILE = {  # name: where it goes relative to the reference
    "exception_at_import": "top", "missing_import": "top", "sys_exit_at_import": "top", "syntax_error": "alone",
    "fake_results": "bottom", "lying_tensor": "bottom", "monkeypatch": "bottom", "nan_outputs": "bottom",
    "walk_fs": "bottom", "sys_exit_in_function": "bottom",
}


def catalogue():
    """[(name, source)] in a fixed order."""
    import importlib
    with open(os.path.join(ROOT, "tests", "submissions", "reference.py"), encoding="utf-8") as f:
        reference = f.read()
    with open(os.path.join(ROOT, "tests", "submissions", "stub.py"), encoding="utf-8") as f:
        items = [("reference", reference), ("stub", f.read())]
    for piece in ("batch_norm", "BatchNorm", "Residual", "DenseBlock", "transition_block", "quiz"):
        module = importlib.import_module(f"variants_{piece}")
        for v in list(module.WRONG) + list(module.RIGHT):
            items.append((v.id, v.source()))
    for name, place in sorted(CHEAP_HOSTILE.items()):
        path = os.path.join(ROOT, "tests", "hostile", name + ".py")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            hostile = f.read()
        items.append((name, {"top": hostile + "\n" + reference, "bottom": reference + "\n\n" + hostile,
                             "alone": hostile}[place]))
    return items


def write_class(folder, count):
    items = catalogue()
    paths = []
    for i in range(count):
        name, source = items[i % len(items)]
        path = os.path.join(folder, f"s{i:03d}_{name}.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        paths.append(path)
    return paths


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def cpu():
    """CPU seconds of every finished descendant (pool processes, and through them the sandboxes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def batch_run(subs, out, workers):
    """(wall seconds, CPU seconds) of one batch, from scratch."""
    from autograder.instructor import batch
    shutil.rmtree(out, ignore_errors=True)
    start, cpu_start = time.perf_counter(), cpu()
    batch.grade_batch(subs, out, workers=workers, progress=False, log=lambda *a: None)
    return time.perf_counter() - start, cpu() - cpu_start


def alone(path):
    """(wall seconds, CPU seconds) of `python -m autograder grade path`."""
    with tempfile.TemporaryDirectory() as out:
        start, cpu_start = time.perf_counter(), cpu()
        subprocess.run([sys.executable, "-m", "autograder", "grade", path, "--quiet",
                        "--results", os.path.join(out, "r.json")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
        return time.perf_counter() - start, cpu() - cpu_start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="submissions in the class (default 100)")
    parser.add_argument("--sample", type=int, default=5, help="submissions graded alone for the cost ratio")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", help="keep the class and the reports in this folder")
    args = parser.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="bnlab-batch-bench-")
    subs = os.path.join(work, "submissions")
    os.makedirs(subs, exist_ok=True)
    paths = write_class(subs, args.count)
    print(f"{args.count} submissions ({len(catalogue())} distinct), {os.cpu_count()} cores; {load()}")

    rates = {}
    for w in args.workers:
        seconds, cpu_s = batch_run(subs, os.path.join(work, f"out-{w}"), w)
        rates[w] = (seconds, 60 * args.count / seconds, cpu_s / args.count)
        print(f"{w} worker(s): {seconds:7.1f} s, {rates[w][1]:6.1f} submissions/min, "
              f"{seconds / args.count:5.2f} s each; CPU {cpu_s / args.count:5.2f} s each, "
              f"{cpu_s / seconds:4.2f} cores busy; {load()}")
    first, last = min(args.workers), max(args.workers)
    if first != last:
        print(f"speed-up {last} vs {first} worker(s): {rates[first][0] / rates[last][0]:.2f}x "
              f"(target >= 1.8x on 2 free cores)")

    step = max(1, args.count // max(1, args.sample))
    sample = paths[::step][: args.sample]
    runs = [alone(p) for p in sample]
    alone_s = [wall for wall, _ in runs]
    per_sub = rates[first][0] / args.count
    print(f"graded alone (python -m autograder grade, {len(sample)} of the mix): mean {statistics.mean(alone_s):.2f} s "
          f"(min {min(alone_s):.2f}, max {max(alone_s):.2f}); CPU {statistics.mean(c for _, c in runs):.2f} s each; "
          f"{load()}")
    print(f"per-submission cost in the {first}-worker batch vs alone: "
          f"{per_sub / statistics.mean(alone_s):.2f}x wall (target <= 1.2x), "
          f"{rates[first][2] / statistics.mean(c for _, c in runs):.2f}x CPU (load-independent)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

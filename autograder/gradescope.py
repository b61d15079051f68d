"""Gradescope: build the autograder zip, and the grading step its ``run_autograder`` calls.

``python -m autograder gradescope-zip OUT.zip`` writes the zip Gradescope's
"Zip file upload" autograder expects, with at its top level:

- ``setup.sh``: run once while Gradescope builds the image; installs python3 and a
  CPU-only torch (the version this grader was tested with) into /autograder/venv;
- ``run_autograder``: run for each submission; calls ``python -m autograder.gradescope run``;
- ``autograder/``: the grader, public AND hidden checks (with the quiz key). No tests,
  no solutions: nothing from outside the package goes in.

Gradescope unpacks the zip into /autograder/source, puts the student's upload in
/autograder/submission and reads /autograder/results/results.json. ``run`` grades
exactly like ``python -m autograder grade`` (``batch.grade_submission``). The root
``/autograder`` can be moved with BNLAB_AUTOGRADER_ROOT, for a local test.
"""
import argparse
import json
import os
import stat
import sys
import time
import zipfile

ROOT_ENV = "BNLAB_AUTOGRADER_ROOT"
DEFAULT_ROOT = "/autograder"
PACKAGE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(os.path.dirname(PACKAGE), "templates", "gradescope")
SUFFIXES = (".ipynb", ".py")
IGNORED = ("__MACOSX", "__pycache__", ".ipynb_checkpoints")


# ---- the zip ----

def torch_version():
    import torch
    return torch.__version__.split("+")[0]


def package_files():
    """(path on disk, name in the zip) for every file of the grader package, hidden checks included."""
    hidden = os.path.join(PACKAGE, "hidden")
    if not os.path.isdir(hidden) or not [n for n in os.listdir(hidden) if n.endswith(".py") and n != "__init__.py"]:
        raise SystemExit("this copy of the grader has no hidden checks: it cannot build the Gradescope zip")
    files = []
    for folder, dirs, names in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED and not d.startswith("."))
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            files.append((path, os.path.join("autograder", os.path.relpath(path, PACKAGE))))
    return files


def add(zf, name, data, executable=False):
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed date: same inputs, same zip
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_zip(out_path):
    """Write the autograder zip; returns the names it holds."""
    with open(os.path.join(TEMPLATES, "setup.sh"), encoding="utf-8") as f:
        setup = f.read().replace("@TORCH_VERSION@", torch_version())
    with open(os.path.join(TEMPLATES, "run_autograder"), encoding="utf-8") as f:
        run_script = f.read()
    names = []
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        add(zf, "setup.sh", setup, executable=True)
        add(zf, "run_autograder", run_script, executable=True)
        names += ["setup.sh", "run_autograder"]
        for path, name in package_files():
            with open(path, "rb") as f:
                add(zf, name, f.read())
            names.append(name)
    os.replace(tmp, out_path)
    return names


# ---- run_autograder's step ----

def find_target(submission_dir):
    """What to grade in the upload: the shallowest folder with notebooks, else with .py files.

    Students upload the notebooks (then they lie right in submission/), or a zip of
    a folder (then one level down); ``None`` if there is nothing gradable."""
    best = {}
    for folder, dirs, names in os.walk(submission_dir):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED and not d.startswith("."))
        depth = os.path.relpath(folder, submission_dir).count(os.sep) + (folder != submission_dir)
        for suffix in SUFFIXES:
            if any(n.endswith(suffix) and not n.startswith((".", "_")) for n in names):
                best[suffix] = min(best.get(suffix, (depth, folder)), (depth, folder))
    for suffix in SUFFIXES:
        if suffix in best:
            return best[suffix][1]
    return None


def run(root=None):
    """Grade <root>/submission into <root>/results/results.json; always writes a report."""
    from . import batch, report
    root = root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    submission = os.path.join(root, "submission")
    results = os.path.join(root, "results", "results.json")
    start = time.monotonic()
    target = find_target(submission) if os.path.isdir(submission) else None
    if target is None:
        data = batch.zero_report("no notebook (.ipynb) or .py file was found in your upload: upload the "
                                 "assignment's notebooks, or one .py file with your functions and classes")
    else:
        try:
            data = batch.grade_submission(target)
        except (Exception, SystemExit) as exc:  # the grader's own failure: still a report, never a traceback
            data = batch.zero_report(f"the grader failed ({type(exc).__name__}); please tell your instructor")
    data = report.hidden_view(data)  # what students see of hidden checks: BNLAB_HIDDEN_FEEDBACK
    data["execution_time"] = round(time.monotonic() - start, 2)
    batch.write_atomic(results, json.dumps(data, indent=1, ensure_ascii=False))
    top = sum(t["max_score"] for t in data["tests"])
    print(f"bnlab: {data['score']:g} / {top:g}; "
          f"{sum(t['status'] == 'passed' for t in data['tests'])} of {len(data['tests'])} checks passed; "
          f"wrote {results}")
    return 0


# ---- command line ----

def add_gradescope_zip_arguments(parser):
    parser.add_argument("out", help="where to write the zip (e.g. bnlab-gradescope.zip)")
    return parser


def run_gradescope_zip(args):
    names = build_zip(args.out)
    hidden = [n for n in names if n.startswith("autograder/hidden/")]
    print(f"wrote {args.out}: setup.sh, run_autograder and the grader ({len(names) - 2} files, "
          f"{len(hidden)} of them hidden checks). Upload it as the assignment's autograder "
          f"(Configure Autograder -> Zip file upload).")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    add_gradescope_zip_arguments(sub.add_parser("zip", help="build the autograder zip"))
    sub.add_parser("run", help="grade $BNLAB_AUTOGRADER_ROOT/submission (what run_autograder calls)")
    args = parser.parse_args(argv)
    return run_gradescope_zip(args) if args.command == "zip" else run()


if __name__ == "__main__":
    sys.exit(main())

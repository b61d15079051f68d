"""Gradescope: build the autograder zip, and the grading step its ``run_autograder`` calls.

``python -m autograder gradescope-zip [OUT.zip]`` writes the zip Gradescope's
"Zip file upload" autograder expects (default ``build/bnlab-gradescope.zip``: ``build/``
is git-ignored, and the zip holds the hidden checks and the key, so it must never be
committed; the command warns when OUT is inside a git work tree and not ignored).
At its top level:

- ``setup.sh``: run once while Gradescope builds the image; installs python3 and CPU-only
  torch / torchvision (the versions this grader was tested with) into /autograder/venv,
  readable by everyone, and makes the hidden material root-only;
- ``run_autograder``: run for each submission; calls ``python -m autograder gradescope-run``
  and, whatever happens (no venv, no torch, a crash), leaves a results.json: a zero score
  for every check with the reason (``python -m autograder gradescope-fail REASON``, which
  needs no torch, else a bare JSON written by the shell);
- ``autograder/``: the grader, public AND hidden checks (with the quiz key). No tests,
  no solutions: nothing from outside the package goes in;
- ``bnlab_rubric.json``: every check's id, title, points and visibility, for that zero report.

Hidden material (``autograder/hidden/``, ``bnlab_rubric.json``) is stored root-only (0600)
in the zip, and ``setup.sh`` / ``run_autograder`` make it so again on disk; the grader runs
as root, and the sandbox runs the student's worker as an unprivileged uid of its own (so the
venv and Python must be readable by everyone: ``setup.sh`` sees to that). A container where the
sandbox cannot be built gets a zero report saying "no sandbox" (it fails closed).

Gradescope unpacks the zip into /autograder/source, puts the student's upload in
/autograder/submission and reads /autograder/results/results.json. ``run`` grades
exactly like ``python -m autograder grade`` (``batch.grade_submission``). The root
``/autograder`` can be moved with BNLAB_AUTOGRADER_ROOT, for a local test.
"""
import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
import zipfile

from .. import course

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # autograder/, hidden checks included
TEMPLATES = os.path.join(os.path.dirname(PACKAGE), "templates", "gradescope")
SUFFIXES = (".ipynb", ".py")
IGNORED = ("__MACOSX", "__pycache__", ".ipynb_checkpoints")
DEFAULT_ZIP = os.path.join("build", "bnlab-gradescope.zip")  # relative to where the command runs; git-ignored
RUBRIC = "bnlab_rubric.json"
ROOT_ONLY = 0o600      # hidden checks, quiz key, rubric: readable by the grader (root) only
PUBLIC_FILE = 0o644
EXECUTABLE = 0o755


class BundleError(Exception):
    """The Gradescope zip cannot be built from this copy of the grader."""


# ---- the zip ----

def torch_version():
    import torch
    return torch.__version__.split("+")[0]


def torchvision_version():
    """The installed torchvision's version (without importing it: that takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("torchvision").split("+")[0]
    except PackageNotFoundError:
        raise BundleError("torchvision is not installed: the Gradescope image pins the pair this grader was "
                         "tested with, so build the zip from the course's environment (.venv)")


def package_files():
    """(path on disk, name in the zip) for every file of the grader package, hidden checks included."""
    hidden = os.path.join(PACKAGE, "hidden")
    if not os.path.isdir(hidden) or not [n for n in os.listdir(hidden) if n.endswith(".py") and n != "__init__.py"]:
        raise BundleError("this copy of the grader has no hidden checks: it cannot build the Gradescope zip")
    files = []
    for folder, dirs, names in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED and not d.startswith("."))
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            files.append((path, os.path.join("autograder", os.path.relpath(path, PACKAGE))))
    return files


def is_hidden_material(name):
    """Whether a name in the zip holds hidden checks, the quiz key or the rubric of hidden ids."""
    return name.startswith("autograder/hidden/") or name == RUBRIC


def add(zf, name, data, mode=PUBLIC_FILE):
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed date: same inputs, same zip
    info.external_attr = (mode | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def rubric():
    """[{id, title, points, hidden}] of every check, in grading order: the zero report's rows."""
    from ..core import runner
    return [{"id": c.id, "title": c.title, "points": c.points, "hidden": c.hidden}
            for c in runner.selected_checks(include_hidden=True)]


def build_zip(out_path=DEFAULT_ZIP):
    """Write the autograder zip (owner-only, see report.OUTPUT_MODE); returns the names it holds."""
    from ..core.report import OUTPUT_MODE
    with open(os.path.join(TEMPLATES, "setup.sh"), encoding="utf-8") as f:
        setup = f.read().replace("@TORCH_VERSION@", torch_version()).replace("@TORCHVISION_VERSION@",
                                                                             torchvision_version())
    with open(os.path.join(TEMPLATES, "run_autograder"), encoding="utf-8") as f:
        run_script = f.read()
    names = []
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        os.chmod(tmp, OUTPUT_MODE)
        add(zf, "setup.sh", setup, EXECUTABLE)
        add(zf, "run_autograder", run_script, EXECUTABLE)
        add(zf, RUBRIC, json.dumps(rubric(), indent=1) + "\n", ROOT_ONLY)
        names += ["setup.sh", "run_autograder", RUBRIC]
        for path, name in package_files():
            with open(path, "rb") as f:
                add(zf, name, f.read(), ROOT_ONLY if is_hidden_material(name) else PUBLIC_FILE)
            names.append(name)
    os.replace(tmp, out_path)
    return names


def git_exposed(path):
    """True when ``path`` lies in a git work tree and git does not ignore it (it could be committed)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        inside = subprocess.run(["git", "-C", folder, "rev-parse", "--is-inside-work-tree"], capture_output=True,
                                text=True, timeout=30)
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return False
        ignored = subprocess.run(["git", "-C", folder, "check-ignore", "-q", os.path.abspath(path)],
                                 capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return ignored.returncode == 1


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


def zero_report(reason, checks=None):
    """Every check (from the bundled rubric) failed with ``reason``; stdlib only: works without torch."""
    text = f"NOT GRADED: {reason}"
    tests = [{"name": c["id"], "score": 0.0, "max_score": float(c["points"]), "status": "failed",
              "output": f"{c['title']}\nnot graded: {reason}",
              "visibility": "after_published" if c["hidden"] else "visible"} for c in (checks or [])]
    return {"score": 0.0, "output": text, "tests": tests}


def bundled_rubric(source=None):
    """The rubric the zip carries (``bnlab_rubric.json`` beside the package); [] if unreadable."""
    path = os.path.join(source or os.path.dirname(PACKAGE), RUBRIC)
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
        return [r for r in rows if isinstance(r, dict) and {"id", "title", "points", "hidden"} <= set(r)]
    except (OSError, ValueError, TypeError):
        return []


def results_path(root=None):
    return os.path.join(course.setting("gradescope_root", root), "results", "results.json")


def write_results(path, data):
    from ..core.report import write_json
    write_json(path, data)


def fail(reason, root=None):
    """Write a zero report that says ``reason`` (what run_autograder calls when grading cannot happen)."""
    path = results_path(root)
    write_results(path, zero_report(reason, bundled_rubric()))
    print(f"bnlab: NOT GRADED: {reason}; wrote a zero report to {path}", file=sys.stderr)
    return 0


def grader_environment_problem():
    """Why this Python cannot grade (no torch), or "" when it can; imports nothing heavy."""
    if importlib.util.find_spec("torch") is None:
        return (f"PyTorch is not installed for the grader's Python ({sys.executable}): the autograder's "
                f"setup.sh did not finish. Please tell your instructor")
    return ""


def run_autograder(root=None):
    """Grade <root>/submission into <root>/results/results.json; always writes a report."""
    root = course.setting("gradescope_root", root)
    submission = os.path.join(root, "submission")
    results = results_path(root)
    start = time.monotonic()
    problem = grader_environment_problem()
    if problem:
        return fail(problem, root)
    from . import batch
    target = find_target(submission) if os.path.isdir(submission) else None
    if target is None:
        data = batch.zero_report("no notebook (.ipynb) or .py file was found in your upload: upload the "
                                 "assignment's notebooks, or one .py file with your functions and classes")
    else:
        try:
            from ..core import report
            # what students see of hidden checks: the course's hidden_feedback setting (a reason for not
            # grading below is no secret: it stays whole)
            data = report.hidden_view(batch.grade_submission(target))
        except Exception as exc:  # the grader's own failure: still a report, never a traceback
            reason = f"the grader failed ({type(exc).__name__}); please tell your instructor"
            if type(exc).__name__ == "NoSandbox":   # fails closed: no student code ran (docs/security.md)
                reason = (f"no sandbox: this container does not let the grader build its private file system "
                          f"({str(exc)[:300]}); nothing of yours was run. Please tell your instructor")
                print(f"bnlab: NOT GRADED: no sandbox ({exc}); see docs/class-scale.md, Channel 2", file=sys.stderr)
            data = batch.zero_report(reason)
    data["execution_time"] = round(time.monotonic() - start, 2)
    write_results(results, data)
    top = sum(t["max_score"] for t in data["tests"])
    print(f"bnlab: {data['score']:g} / {top:g}; "
          f"{sum(t['status'] == 'passed' for t in data['tests'])} of {len(data['tests'])} checks passed; "
          f"wrote {results}")
    return 0


# ---- command line ----

def add_arguments(parser, command="gradescope-zip"):
    if command == "gradescope-zip":
        parser.add_argument("out", nargs="?", default=DEFAULT_ZIP,
                            help=f"where to write the zip (default: {DEFAULT_ZIP}, git-ignored)")
    elif command == "gradescope-fail":
        parser.add_argument("reason")
    return parser


def run(args):
    if args.command == "gradescope-run":
        return run_autograder()
    if args.command == "gradescope-fail":
        return fail(args.reason)
    out = args.out or DEFAULT_ZIP
    try:
        names = build_zip(out)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    hidden = [n for n in names if n.startswith("autograder/hidden/")]
    print(f"wrote {out}: setup.sh, run_autograder, {RUBRIC} and the grader ({len(names) - 3} files, "
          f"{len(hidden)} of them hidden checks). Upload it as the assignment's autograder "
          f"(Configure Autograder -> Zip file upload).")
    if git_exposed(out):
        print(f"warning: {out} holds the hidden checks and the quiz key, and git does not ignore it: do not "
              f"commit it (write it under build/, or add it to .gitignore)", file=sys.stderr)
    return 0

"""Build the student release from the nbgrader source notebooks.

    python -m autograder build-release [--root ROOT]      (or: python -m autograder.release)

Every step is deterministic, so a re-run leaves ``assignments/`` byte-identical:

1. vendor the public grader: copy ``autograder/`` to ``solutions/<assignment>/bnlab_public/``
   without ``hidden/`` and without this file; refuse a copy that names a hidden check,
   the quiz key, or imports ``autograder`` / ``hidden`` by name (it must work renamed);
2. write ``conftest.py`` and ``pytest.ini`` beside the notebooks, so that ``pytest`` in the
   assignment folder runs the public checks (``bnlab_public/pytest_plugin.py``);
3. regenerate the autograder test cells of each notebook from the registry: after the
   markdown cell whose metadata is ``{"bnlab": {"tests_for": <piece>}}``, one locked nbgrader
   test cell per registered check of that piece, points = the check's points. Public checks
   are called visibly (``bnlab_public.notebook.check``); hidden ones inside a
   ``### BEGIN HIDDEN TESTS`` region (``autograder.notebook.check``), in cells whose grade id
   does not name the check. One check per cell, so nbgrader's score equals the CLI's.
   Public cells also re-import ``check`` from ``autograder.notebook`` in a hidden region: the
   release shows the public import only, while ``nbgrader autograde`` (which restores the
   source of locked cells) grades every check with the instructor's grader, one sandboxed
   worker per notebook (``autograder/notebook.py``);
4. run the real ``nbgrader generate_assignment <assignment> --force`` (venv ``bin/`` on PATH);
5. check the release: no solution region, hidden-test region, hidden check id, quiz key,
   ``hidden/`` folder or ``quiz_key`` file (``release_problems``).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

from . import runner
from .notebook import NOTEBOOK_OF_PIECE

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PACKAGE_DIR)
ASSIGNMENT = "bn_resnet_densenet"
VENDOR = "bnlab_public"
# Instructor-only modules and the command line stay out of the students' copy.
NOT_VENDORED = {"hidden", "release.py", "nbgrader_hooks.py", "nbgrader_verify.py", "batch.py", "insight.py",
                "nbgrader_autograde.py",
                "gradescope.py", "summary_md.py", "cli.py", "__main__.py", "__pycache__"}
GENERATED = "generated"

CONFTEST = '''\
"""`pytest` in this folder grades the notebooks here with the public checks.

The hooks live in bnlab_public/pytest_plugin.py (a copy of the course's grader
without its hidden checks). Run `pytest -q`, or `pytest 04_quiz.ipynb` for one notebook.
"""
from bnlab_public.pytest_plugin import *  # noqa: F401,F403
'''

PYTEST_INI = '''\
# `pytest` here runs the public checks on this folder's notebooks (see conftest.py).
[pytest]
addopts = -p no:cacheprovider
norecursedirs = .* __pycache__ bnlab_public
'''


class BuildError(Exception):
    pass


def registered_checks():
    """Every registered check, public and hidden, in registration order."""
    return runner.selected_checks(include_hidden=True)


def hidden_ids(checks):
    return [c.id for c in checks if c.hidden]


# ---- 1. the vendored public grader -------------------------------------------

ABSOLUTE_IMPORT = re.compile(r"^\s*(from|import)\s+autograder\b", re.M)
HIDDEN_IMPORT = re.compile(r"^\s*from\s+\.+\s*hidden\b|^\s*from\s+\.+\s+import\s+.*\bhidden\b", re.M)


def mentions(text, check_id):
    """Whether ``check_id`` occurs in ``text`` as a whole id (not inside a longer one)."""
    return re.search(r"(?<![\w.])" + re.escape(check_id) + r"(?![\w])", text) is not None


def vendor_public(dest_package, hidden, package_dir=PACKAGE_DIR):
    """Copy the grader's public part to ``dest_package`` (a fresh folder); returns the files copied."""
    if os.path.exists(dest_package):
        shutil.rmtree(dest_package)
    copied, problems = [], []
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d not in NOT_VENDORED)
        for name in sorted(files):
            if not name.endswith(".py") or name in NOT_VENDORED:
                continue
            src = os.path.join(folder, name)
            rel = os.path.relpath(src, package_dir)
            with open(src, encoding="utf-8") as f:
                text = f.read()
            if ABSOLUTE_IMPORT.search(text):
                problems.append(f"autograder/{rel} imports `autograder` by absolute name; use a relative import")
            if HIDDEN_IMPORT.search(text):
                problems.append(f"autograder/{rel} imports the hidden package")
            if "quiz_key" in text:
                problems.append(f"autograder/{rel} names the quiz key module")
            problems += [f"autograder/{rel} names the hidden check {i}" for i in hidden if mentions(text, i)]
            dest = os.path.join(dest_package, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            copied.append(rel)
    if problems:
        shutil.rmtree(dest_package, ignore_errors=True)
        raise BuildError("the public copy of the grader would leak or break:\n  " + "\n  ".join(problems))
    return copied


def write_if_changed(path, text):
    old = None
    if os.path.exists(path):
        with open(path, encoding="utf-8", newline="") as f:
            old = f.read()
    if old != text:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)


# ---- 3. the test cells -------------------------------------------------------

def slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def number(points):
    return int(points) if float(points).is_integer() else float(points)


def test_cell(grade_id, source, points):
    import nbformat
    meta = {"deletable": False, "editable": False,
            "bnlab": {GENERATED: True},
            "nbgrader": {"grade": True, "grade_id": grade_id, "locked": True, "points": number(points),
                         "schema_version": 3, "solution": False, "task": False}}
    return nbformat.v4.new_code_cell(source=source, metadata=meta, id=grade_id[:64])


def public_cell(c):
    plural = "" if c.points == 1 else "s"
    source = (f"# 公开测试 / public test ({c.points:g} point{plural}): {c.title}\n"
              f"from {VENDOR}.notebook import check\n"
              f"### BEGIN HIDDEN TESTS\n"
              f"from autograder.notebook import check  # autograde: the instructor's grader, as for hidden tests\n"
              f"### END HIDDEN TESTS\n"
              f"check({c.id!r})")
    return test_cell(f"test_{slug(c.id)}", source, c.points)


def hidden_cell(c, piece, n):
    plural = "" if c.points == 1 else "s"
    source = (f"# 隐藏测试 / hidden test ({c.points:g} point{plural}): runs when your work is graded\n"
              f"### BEGIN HIDDEN TESTS\n"
              f"from autograder.notebook import check as check_hidden\n"
              f"check_hidden({c.id!r})\n"
              f"### END HIDDEN TESTS")
    return test_cell(f"hidden_{slug(piece)}_{n}", source, c.points)


def cells_for(piece, checks):
    mine = [c for c in checks if c.piece == piece]
    cells = [public_cell(c) for c in mine if not c.hidden]
    cells += [hidden_cell(c, piece, n) for n, c in enumerate((c for c in mine if c.hidden), 1)]
    return cells


def regenerate_test_cells(path, checks):
    """Rewrite ``path`` with fresh test cells after each piece's anchor; returns {piece: number of cells}."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    name = os.path.basename(path)
    wanted = {p for p, n in NOTEBOOK_OF_PIECE.items() if n == name}
    kept = [cell for cell in nb.cells if not cell.metadata.get("bnlab", {}).get(GENERATED)]
    cells, counts = [], {}
    for cell in kept:
        cells.append(cell)
        piece = cell.metadata.get("bnlab", {}).get("tests_for")
        if piece:
            if piece not in wanted or piece in counts:
                raise BuildError(f"{name}: unexpected test anchor for piece {piece!r}")
            fresh = cells_for(piece, checks)
            counts[piece] = len(fresh)
            cells.extend(fresh)
    missing = sorted(p for p in wanted if p not in counts and any(c.piece == p for c in checks))
    if missing:
        raise BuildError(f"{name}: no anchor cell for the tests of {missing} "
                         f"(a markdown cell with metadata {{\"bnlab\": {{\"tests_for\": piece}}}})")
    nb.cells = cells
    write_if_changed(path, nbformat.writes(nb) + "\n")
    return counts


# ---- 4. nbgrader --------------------------------------------------------------

def run_nbgrader(root):
    bins = [os.path.dirname(sys.executable), os.path.join(ROOT, ".venv", "bin")]
    env = dict(os.environ, PATH=os.pathsep.join(bins + [os.environ.get("PATH", "")]))
    os.makedirs(os.path.join(root, "gradebook"), exist_ok=True)
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force",
           f"--CourseDirectory.root={root}"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"nbgrader generate_assignment failed (status {proc.returncode}):\n"
                         f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc


# ---- 5. what must never reach students ----------------------------------------

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
ANSWER_PAIR = re.compile(r"""\b(q\d+)\b[\\"'\s]*[:=][\\"'\s]*([A-Za-z])[\\"'\s]*[,}\n]""")


def readable_text(path):
    """A file's text; for a notebook, also every cell's source and outputs joined (JSON unescaped)."""
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    if not path.endswith(".ipynb"):
        return raw
    try:
        nb = json.loads(raw)
    except ValueError:
        return raw
    parts = [raw]
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        parts.append("".join(src) if isinstance(src, list) else src)
        parts.append(json.dumps(cell.get("outputs", []), ensure_ascii=False))
    return "\n".join(parts)


def release_problems(release_dir, hidden, key):
    """Everything in ``release_dir`` that would give away a solution, a hidden check or the key."""
    problems = []
    key_string = "".join(key[q] for q in sorted(key, key=lambda q: int(q[1:])))
    for folder, dirs, files in os.walk(release_dir):
        dirs.sort()
        for d in dirs:
            if d == "hidden":
                problems.append(f"{os.path.relpath(os.path.join(folder, d), release_dir)}/: a hidden folder")
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, release_dir)
            if "quiz_key" in name:
                problems.append(f"{rel}: the quiz key module")
            text = readable_text(path)
            problems += [f"{rel}: contains {m!r}" for m in MARKERS if m in text]
            problems += [f"{rel}: names the hidden check {i}" for i in hidden if mentions(text, i)]
            if "quiz_key" in text:
                problems.append(f"{rel}: names the quiz key module")
            if key_string in text.upper():
                problems.append(f"{rel}: contains the quiz key as one string")
            for q, letter in ANSWER_PAIR.findall(text):
                if key.get(q) == letter.upper():
                    problems.append(f"{rel}: contains the answer to {q}")
    return sorted(set(problems))


def quiz_key():
    from .hidden.quiz_key import KEY
    return dict(KEY)


# ---- the build ------------------------------------------------------------------

def build(root=ROOT, log=print):
    """Run steps 1-5 on the course at ``root``; returns {step: seconds}."""
    timings = {}
    start = time.monotonic()
    checks = registered_checks()
    source = os.path.join(root, "solutions", ASSIGNMENT)
    if not os.path.isdir(source):
        raise BuildError(f"no source assignment at {source}")
    copied = vendor_public(os.path.join(source, VENDOR), hidden_ids(checks))
    write_if_changed(os.path.join(source, "conftest.py"), CONFTEST)
    write_if_changed(os.path.join(source, "pytest.ini"), PYTEST_INI)
    counts = {}
    for name in sorted(set(NOTEBOOK_OF_PIECE.values())):
        path = os.path.join(source, name)
        if not os.path.exists(path):
            raise BuildError(f"missing source notebook {path}")
        counts.update(regenerate_test_cells(path, checks))
    timings["prepare"] = time.monotonic() - start
    log(f"vendored {len(copied)} files into {VENDOR}/; test cells per piece: "
        + ", ".join(f"{p} {n}" for p, n in sorted(counts.items())))

    start = time.monotonic()
    run_nbgrader(root)
    timings["generate_assignment"] = time.monotonic() - start
    log(f"nbgrader generate_assignment {ASSIGNMENT}: {timings['generate_assignment']:.1f} s")

    release = os.path.join(root, "assignments", ASSIGNMENT)
    problems = release_problems(release, hidden_ids(checks), quiz_key())
    if problems:
        raise BuildError("the release gives things away:\n  " + "\n  ".join(problems))
    public = sum(c.points for c in checks if not c.hidden)
    log(f"release checked: {release} ({len(checks)} checks, {public:g} public + "
        f"{sum(c.points for c in checks) - public:g} hidden points)")
    return timings


def add_arguments(parser):
    parser.add_argument("--root", default=ROOT, help="course directory (default: the repository root)")


def run(args):
    """Entry point for ``python -m autograder build-release``: args.root may be None (the repository root)."""
    try:
        build(os.path.abspath(getattr(args, "root", None) or ROOT))
    except BuildError as exc:
        print(f"build-release: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder build-release",
                                     description="Regenerate the test cells and the student release.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

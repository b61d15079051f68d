"""The committed student release is exactly what the build generates, and it gives nothing away.

A fresh build (vendored grader, test cells from the registry, real ``nbgrader
generate_assignment``) runs in a temporary course made of a copy of
``solutions/`` and ``nbgrader_config.py``; its ``solutions/`` (less the vendored
grader, a git-ignored build product there) and ``assignments/`` must equal the
committed ones byte for byte. If they differ, run ``python -m autograder
build-release`` and commit the result.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from autograder.core import runner
from autograder.instructor import release
from autograder.core.check import PIECES
from autograder.hidden.quiz_key import KEY
from autograder.course import NOTEBOOK_OF_PIECE

pytestmark = pytest.mark.xdist_group("test_release")   # its module fixtures are built once, in one test process

ASSIGNMENT = release.ASSIGNMENT
RELEASE = os.path.join(ROOT, "assignments", ASSIGNMENT)
SOURCE = os.path.join(ROOT, "solutions", ASSIGNMENT)
IGNORED = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


def tree(folder, skip=()):
    """{relative path: bytes} of every file under folder, skipping caches (and the folders in ``skip``)."""
    files = {}
    for base, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in IGNORED and d not in skip]
        for name in names:
            if name.endswith(".pyc"):
                continue
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def differences(a, b, skip=()):
    ta, tb = tree(a, skip), tree(b, skip)
    return sorted(set(ta) ^ set(tb)) + sorted(p for p in set(ta) & set(tb) if ta[p] != tb[p])


def all_checks():
    return runner.selected_checks(include_hidden=True)


def hidden_ids():
    return [c.id for c in all_checks() if c.hidden]


def grade_cells(folder):
    cells = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".ipynb"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                nb = json.load(f)
            cells += [(name, c) for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    return cells


@pytest.fixture(scope="module")
def fresh_course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(os.path.join(ROOT, "solutions"), root / "solutions",
                    ignore=shutil.ignore_patterns(*IGNORED, "*.pyc", release.VENDOR))
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), root / "nbgrader_config.py")
    release.build(str(root), log=lambda *args: None)
    return root


def test_committed_release_equals_a_fresh_generation(fresh_course):
    diff = differences(RELEASE, fresh_course / "assignments" / ASSIGNMENT)
    assert not diff, f"assignments/ is stale ({diff}): run `python -m autograder build-release`"


def test_committed_sources_are_up_to_date(fresh_course):
    """The test cells in solutions/ match the registry (the vendored grader there is a build product)."""
    diff = differences(SOURCE, fresh_course / "solutions" / ASSIGNMENT, skip=(release.VENDOR,))
    assert not diff, f"solutions/ is stale ({diff}): run `python -m autograder build-release`"


def test_release_gives_nothing_away():
    assert release.release_problems(RELEASE, hidden_ids(), KEY) == []
    assert not os.path.exists(os.path.join(RELEASE, "bnlab_public", "hidden"))
    assert not os.path.exists(os.path.join(RELEASE, "bnlab_public", "instructor"))
    assert not os.path.exists(os.path.join(RELEASE, "bnlab_public", "__main__.py"))
    names = [n for _, _, files in os.walk(RELEASE) for n in files]
    assert not [n for n in names if "quiz_key" in n]


@pytest.mark.parametrize("leak", ["solution", "hidden_region", "hidden_id", "key_dict", "key_string",
                                  "hidden_folder", "key_file"])
def test_leak_detector_catches(leak, tmp_path):
    """release_problems is not a test that cannot fail: each kind of leak is caught."""
    copy = tmp_path / "release"
    shutil.copytree(RELEASE, copy, ignore=shutil.ignore_patterns(*IGNORED))
    assert release.release_problems(str(copy), hidden_ids(), KEY) == []
    quiz = copy / "04_quiz.ipynb"
    nb = json.loads(quiz.read_text(encoding="utf-8"))
    answer_cell = next(c for c in nb["cells"] if "QUIZ_ANSWERS" in "".join(c["source"]))
    some_hidden = hidden_ids()[0]
    if leak == "solution":
        answer_cell["source"] = ["### BEGIN SOLUTION\n", "x = 1\n", "### END SOLUTION"]
    elif leak == "hidden_region":
        answer_cell["source"] = ["### BEGIN HIDDEN TESTS\n", "### END HIDDEN TESTS"]
    elif leak == "hidden_id":
        answer_cell["source"] = [f"check_hidden({some_hidden!r})"]
    elif leak == "key_dict":
        answer_cell["source"] = ["QUIZ_ANSWERS = {\n", f'    "q4": "{KEY["q4"].lower()}",\n', "}"]
    elif leak == "key_string":
        (copy / "notes.txt").write_text("".join(KEY[f"q{i}"] for i in range(1, 11)))
    elif leak == "hidden_folder":
        (copy / "bnlab_public" / "hidden").mkdir()
    elif leak == "key_file":
        (copy / "quiz_key.py").write_text("")
    quiz.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    assert release.release_problems(str(copy), hidden_ids(), KEY)


def test_release_stubs_are_nbgrader_defaults():
    with open(os.path.join(RELEASE, "01_batch_norm.ipynb"), encoding="utf-8") as f:
        nb = json.load(f)
    solution_cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert solution_cells
    for cell in solution_cells:
        source = "".join(cell["source"])
        assert "# YOUR CODE HERE" in source and "raise NotImplementedError()" in source
        assert not cell.get("outputs")


def test_points_come_from_the_registry():
    """One locked test cell per registered check, in the notebook of its piece, worth its points."""
    cells = grade_cells(SOURCE)
    called = {}
    for name, cell in cells:
        source = "".join(cell["source"])
        ids = re.findall(r"check(?:_hidden)?\('([^']+)'\)", source)
        assert len(ids) == 1, source
        called[ids[0]] = (name, cell["metadata"]["nbgrader"]["points"], "check_hidden(" in source)
        assert cell["metadata"]["nbgrader"]["locked"]
    checks = all_checks()
    assert set(called) == {c.id for c in checks}
    for c in checks:
        assert called[c.id] == (NOTEBOOK_OF_PIECE[c.piece], c.points, c.hidden), c.id
    released = grade_cells(RELEASE)
    assert sum(cell["metadata"]["nbgrader"]["points"] for _, cell in released) == sum(c.points for c in checks)


def test_every_piece_has_a_notebook():
    assert set(NOTEBOOK_OF_PIECE) == set(PIECES)


def test_vendored_grader_works_under_its_own_name():
    """Run from the release folder, bnlab_public imports (all imports relative) and knows only public checks."""
    code = ("import sys; sys.path.insert(0, '.'); import bnlab_public.core.runner as r, importlib.util as u; "
            "import bnlab_public.notebook, bnlab_public.pytest_plugin; "
            "print(sorted(c.id for c in r.selected_checks(False))); "
            "print(u.find_spec('bnlab_public.hidden')); print('autograder' in sys.modules)")
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=RELEASE, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    public = sorted(c.id for c in all_checks() if not c.hidden)
    assert proc.stdout.splitlines() == [str(public), "None", "False"]


@pytest.mark.parametrize("line, complaint", [
    ("from autograder.core.check import check", "absolute name"),
    ("from .hidden import quiz", "hidden package"),
    ("# see quiz_key", "quiz key"),
    ("ID = {hidden!r}", "names the hidden check"),
])
def test_vendoring_refuses_a_copy_that_would_leak_or_break(line, complaint, tmp_path):
    package = tmp_path / "pkg"
    (package / "checks").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "checks" / "mod.py").write_text(line.format(hidden=hidden_ids()[0]) + "\n")
    with pytest.raises(release.BuildError, match=complaint):
        release.vendor_public(str(tmp_path / "out"), hidden_ids(), package_dir=str(package))
    assert not (tmp_path / "out").exists()


def solution_answers():
    with open(os.path.join(SOURCE, "04_quiz.ipynb"), encoding="utf-8") as f:
        nb = json.load(f)
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    namespace = {}
    exec("".join(cell["source"]), namespace)
    return namespace["QUIZ_ANSWERS"]


def test_quiz_key_agrees_with_the_solution_notebook_and_the_reference():
    namespace = {}
    with open(os.path.join(ROOT, "tests", "submissions", "reference.py"), encoding="utf-8") as f:
        source = f.read()
    exec(source[source.index("QUIZ_ANSWERS"):], namespace)
    assert solution_answers() == KEY == namespace["QUIZ_ANSWERS"]


def test_vendored_files_say_they_are_generated():
    vendored = os.path.join(RELEASE, release.VENDOR)
    files = [os.path.join(base, n) for base, _, names in os.walk(vendored) for n in names if n.endswith(".py")]
    assert files
    for path in files:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        rel = os.path.relpath(path, vendored).replace(os.sep, "/")
        assert first.startswith("# Generated by `python -m autograder build-release`") and rel in first, path


def test_instructor_only_folders_are_never_vendored(tmp_path):
    """A new module under instructor/ or hidden/ stays out of the students' copy without anyone listing it."""
    package = tmp_path / "pkg"
    for folder in ("instructor", "hidden", "core"):
        (package / folder).mkdir(parents=True)
        (package / folder / "brand_new.py").write_text("X = 1\n")
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("")
    copied = release.vendor_public(str(tmp_path / "out"), [], package_dir=str(package))
    assert sorted(copied) == ["__init__.py", os.path.join("core", "brand_new.py")]


def test_the_solutions_copy_of_the_grader_is_not_committed():
    tracked = subprocess.run(["git", "ls-files", os.path.join("solutions", ASSIGNMENT)], cwd=ROOT,
                             capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert not [p for p in tracked.stdout.splitlines() if f"/{release.VENDOR}/" in p]

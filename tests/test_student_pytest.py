"""The students' door: a bare `pytest` in (a copy of) the release folder.

The release is built afresh from ``solutions/`` into a temporary course (the committed
``assignments/`` is rebuilt only after merges), so these tests see this grader's plugin.
Untouched, the release scores zero with "not implemented yet" messages, no traceback of
grader code, and a summary that states the real maximum ("P public + H hidden = T", from the
registry); with the solutions' notebooks (solution regions kept) every public check passes.
Points reach JUnit XML through ``user_properties``.

INTEGRATION, marked by name (``test_fresh_venv_...``): the untouched run happens in a NEW
virtual environment that installs the release's ``requirements.txt`` with ``pip --no-index``
(no network at all). It is layered on the grader's own environment (a ``.pth`` file adds its
site-packages), so pip finds every pin already satisfied: the test proves that the file
parses, that its pins are what the grader runs, and that `pytest` works from that environment.
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT
from autograder.core import runner
from autograder.instructor import release
from autograder.instructor.release import ASSIGNMENT

pytestmark = pytest.mark.xdist_group("test_student_pytest")   # its module fixtures are built once, in one test process

SOURCE = os.path.join(ROOT, "solutions", ASSIGNMENT)
IGNORE = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".pytest_cache", "*.pyc")


def public_checks():
    return [c for c in runner.selected_checks(include_hidden=False)]


def all_checks():
    return runner.selected_checks(include_hidden=True)


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    """The student release, built from solutions/ by the real build (nbgrader included) in a temporary course."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(os.path.join(ROOT, "solutions"), root / "solutions", ignore=IGNORE)
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), root / "nbgrader_config.py")
    release.build(str(root), log=lambda *args: None)
    return root / "assignments" / ASSIGNMENT


@pytest.fixture(scope="module")
def student_venv(tmp_path_factory):
    """A new venv on top of the grader's environment; returns (python, pip's output)."""
    venv = tmp_path_factory.mktemp("venv") / "student-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    site_dir = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site_dir, "_grader_env.pth"), "w", encoding="utf-8") as f:
        f.write(f"import site; site.addsitedir({parent!r})\n")
    return python


def student_pytest(folder, python=sys.executable):
    """`pytest` with no arguments in folder, as a student runs it (plus a JUnit file to read points from)."""
    env = dict(os.environ, PATH=os.path.dirname(python) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTHONPATH", None)
    junit = os.path.join(folder, "..", "junit.xml")
    proc = subprocess.run([python, "-m", "pytest", f"--junitxml={junit}"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    cases = ET.parse(junit).getroot().iter("testcase")
    points = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases}
    return proc, points


@pytest.fixture(scope="module")
def installed(fresh_release, student_venv, tmp_path_factory):
    """The untouched release copied to a student's folder, its requirements installed in the new venv."""
    folder = tmp_path_factory.mktemp("student") / ASSIGNMENT
    shutil.copytree(fresh_release, folder, ignore=IGNORE)
    pip = subprocess.run([student_venv, "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
                          "-r", "requirements.txt"], cwd=folder, capture_output=True, text=True, timeout=600)
    return folder, pip


@pytest.fixture(scope="module")
def untouched(installed, student_venv):
    folder, _ = installed
    return student_pytest(str(folder), python=student_venv)


@pytest.fixture(scope="module")
def solved(fresh_release, tmp_path_factory):
    folder = tmp_path_factory.mktemp("solved") / ASSIGNMENT
    shutil.copytree(fresh_release, folder, ignore=IGNORE)
    for name in os.listdir(SOURCE):
        if name.endswith(".ipynb"):
            shutil.copy(os.path.join(SOURCE, name), folder / name)
    return student_pytest(str(folder))


def test_fresh_venv_installs_the_release_requirements_offline(installed, student_venv):
    folder, pip = installed
    assert pip.returncode == 0, pip.stdout + pip.stderr
    text = (folder / "requirements.txt").read_text()
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)$", text, re.M))
    from importlib.metadata import version
    assert pins == {"torch": version("torch").split("+")[0], "torchvision": version("torchvision").split("+")[0]}
    assert "download.pytorch.org/whl/cpu" in text and "GPU" in text  # CPU wheels by default, GPU variant named
    assert "already satisfied: torch==" in pip.stdout
    proc = subprocess.run([student_venv, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("student-venv")


def test_release_ships_readme_and_requirements(fresh_release):
    readme = (fresh_release / "README.md").read_text(encoding="utf-8")
    assert "pip install -r requirements.txt" in readme and "pytest" in readme and "hidden" in readme
    first = (fresh_release / "01_batch_norm.ipynb").read_text(encoding="utf-8")
    assert "pip install -r requirements.txt" in first
    assert (fresh_release / "train_utils.py").is_file()


def test_untouched_release_scores_zero_with_not_implemented(untouched):
    proc, points = untouched
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    checks = public_checks()
    assert sorted(points) == sorted(c.id for c in checks), out
    total = sum(c.points for c in checks)
    assert f"failed" in out and f"0 / {total:g}" in out, out
    for c in checks:
        assert f"{c.id}" in out
    failure_lines = [line for line in out.splitlines() if line.startswith("FAILED ")]
    assert len(failure_lines) == len(checks), out
    assert out.count("not implemented yet") >= len(checks), out


def test_summary_states_the_real_maximum(untouched):
    proc, _ = untouched
    public = sum(c.points for c in all_checks() if not c.hidden)
    hidden = sum(c.points for c in all_checks() if c.hidden)
    assert hidden > 0
    assert f"{public:g} public + {hidden:g} hidden = {public + hidden:g}" in proc.stdout, proc.stdout


def test_failures_show_no_grader_traceback(untouched):
    proc, _ = untouched
    out = proc.stdout + proc.stderr
    for forbidden in ("Traceback", "bnlab_public", "autograder", "site-packages", "def ", "raise "):
        assert forbidden not in out, (forbidden, out)


def test_points_are_user_properties(untouched):
    _, points = untouched
    for c in public_checks():
        assert float(points[c.id]["points"]) == c.points


def test_solution_notebooks_pass_every_public_check(solved):
    proc, points = solved
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    total = sum(c.points for c in public_checks())
    assert f"{total:g} / {total:g}" in out, out
    assert sorted(points) == sorted(c.id for c in public_checks())


# ---- the notebooks' first code cell: is this folder complete? ----

def first_code_cell(path):
    import json
    with open(path, encoding="utf-8") as f:
        return next(c for c in json.load(f)["cells"] if c["cell_type"] == "code")


def run_cell(cell, folder):
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    return subprocess.run([sys.executable, "-c", "".join(cell["source"])], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def test_first_cell_says_what_a_notebooks_only_folder_is_missing(fresh_release, tmp_path):
    alone = tmp_path / "only-notebooks"
    alone.mkdir()
    names = sorted(n for n in os.listdir(fresh_release) if n.endswith(".ipynb"))
    assert len(names) == 4
    for name in names:
        shutil.copy(fresh_release / name, alone / name)
    for name in names:
        cell = first_code_cell(alone / name)
        assert "skip-grading" in cell["metadata"].get("tags", []), name  # never run by the grader
        lonely = run_cell(cell, alone)
        assert lonely.returncode == 0, lonely.stderr
        assert "This folder is missing: bnlab_public, conftest.py, pytest.ini, train_utils.py." in lonely.stdout
        assert "collected 0 items" in lonely.stdout and "Download the WHOLE assignment folder" in lonely.stdout
        whole = run_cell(cell, fresh_release)
        assert "missing" not in whole.stdout and "This folder is complete" in whole.stdout, whole.stdout

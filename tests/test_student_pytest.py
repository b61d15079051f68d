"""The students' door: a bare `pytest` in (a copy of) the release folder.

Untouched, the release scores zero with "not implemented yet" messages and no
traceback of grader code; with the solutions' notebooks (solution regions kept)
every public check passes. Points reach JUnit XML through ``user_properties``.
"""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT
from autograder.core import runner
from autograder.instructor.release import ASSIGNMENT

RELEASE = os.path.join(ROOT, "assignments", ASSIGNMENT)
SOURCE = os.path.join(ROOT, "solutions", ASSIGNMENT)
IGNORE = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".pytest_cache", "*.pyc")


def public_checks():
    return [c for c in runner.selected_checks(include_hidden=False)]


def student_pytest(folder):
    """`pytest` with no arguments in folder, as a student runs it (plus a JUnit file to read points from)."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTHONPATH", None)
    junit = os.path.join(folder, "..", "junit.xml")
    proc = subprocess.run([sys.executable, "-m", "pytest", f"--junitxml={junit}"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    cases = ET.parse(junit).getroot().iter("testcase")
    points = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases}
    return proc, points


@pytest.fixture(scope="module")
def untouched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student") / ASSIGNMENT
    shutil.copytree(RELEASE, folder, ignore=IGNORE)
    return student_pytest(str(folder))


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solved") / ASSIGNMENT
    shutil.copytree(RELEASE, folder, ignore=IGNORE)
    for name in os.listdir(SOURCE):
        if name.endswith(".ipynb"):
            shutil.copy(os.path.join(SOURCE, name), folder / name)
    return student_pytest(str(folder))


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

"""Students' ``pytest``: one test per public check, listed under the notebook it concerns.

In the assignment folder, ``conftest.py`` imports these hooks, so a bare
``pytest`` there collects ``01_batch_norm.ipynb::batch_norm.returns_triple`` and
so on (``pytest 04_quiz.ipynb`` or ``pytest -k quiz`` run a part). The notebooks
of the folder are loaded once, the way the grader loads them (code cells in
order; cells tagged ``skip-grading`` and nbgrader's test cells left out), in
this process. A failed check shows its message only (``pytest.fail(...,
pytrace=False)``): no traceback of grader code. Each test carries its points in
``item.user_properties`` (``("points", n)``, so they reach JUnit XML and survive
pytest-xdist), and the run ends with a table of points, the total, and the real
maximum ("P public + H hidden = T": the release build writes the hidden total to
``points.json`` beside this file, see ``maximum``).
"""
import contextlib
import io
import json
import os
import warnings

import pytest

from .core import runner
from .course import NOTEBOOK_OF_PIECE
from .core.student import InProcessStudent

__all__ = ["pytest_collect_file", "pytest_runtest_logreport", "pytest_terminal_summary"]

POINTS = "points"
POINTS_FILE = "points.json"  # written beside this file by the release build (release.point_totals)
_LOADED = {}   # folder -> (student, context)
_SCORES = {}   # nodeid -> (check id, passed, points)


def public_checks():
    return runner.selected_checks(include_hidden=False)


def maximum():
    """(public points, hidden points or None): the rubric's totals, whichever part of it ran.

    The students' copy has no hidden checks: their total comes from ``points.json``, which
    the release build writes from the registry. The full grader counts them itself."""
    public = sum(c.points for c in public_checks())
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, POINTS_FILE), encoding="utf-8") as f:
            return public, float(json.load(f)["hidden_points"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if os.path.isdir(os.path.join(here, "hidden")):
        return public, sum(c.points for c in runner.selected_checks(include_hidden=True) if c.hidden)
    return public, None


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".ipynb" and file_path.name in set(NOTEBOOK_OF_PIECE.values()):
        return NotebookChecks.from_parent(parent, path=file_path)
    return None


class NotebookChecks(pytest.File):
    """A lesson notebook, as the public checks of the pieces it holds."""

    def collect(self):
        for c in public_checks():
            if NOTEBOOK_OF_PIECE.get(c.piece) == self.path.name:
                yield CheckItem.from_parent(self, name=c.id, check=c)


def loaded(folder):
    """Load the folder's notebooks once; their printed output is not the checks' business."""
    if folder not in _LOADED:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            student = InProcessStudent(folder)
            context = runner.inventory(student)
        _LOADED[folder] = (student, context)
    return _LOADED[folder]


class CheckItem(pytest.Item):
    def __init__(self, *, check, **kwargs):
        super().__init__(**kwargs)
        self.check = check
        self.user_properties.append((POINTS, check.points))

    def runtest(self):
        student, context = loaded(str(self.path.parent))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = runner.run_one(self.check, student, context)
        if not result.passed:
            pytest.fail(result.message or "failed", pytrace=False)

    def reportinfo(self):
        return self.path, None, f"{self.check.id}: {self.check.title}"


def pytest_runtest_logreport(report):
    points = dict(report.user_properties).get(POINTS)
    if points is None:
        return
    check_id = report.nodeid.rsplit("::", 1)[-1]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _SCORES[report.nodeid] = (check_id, report.passed, float(points))


def pytest_terminal_summary(terminalreporter):
    if not _SCORES:
        return
    tr = terminalreporter
    rows = list(_SCORES.values())
    width = max(len(r[0]) for r in rows)
    tr.section("bnlab: points from the public checks")
    for check_id, passed, points in rows:
        tr.line(f"{check_id:<{width}}  {'pass' if passed else 'FAIL':<4}  {points if passed else 0:>4g} / {points:g}")
    earned = sum(p for _, ok, p in rows if ok)
    total = sum(p for _, _, p in rows)
    tr.line(f"{'total':<{width}}        {earned:>4g} / {total:g}")
    public, hidden = maximum()
    if hidden is None:
        tr.line("Hidden checks add more points when your work is graded; passing these is the first step.")
    else:
        tr.line(f"Maximum: {public:g} public + {hidden:g} hidden = {public + hidden:g} points. The hidden checks "
                f"run when your work is graded; passing the public ones is the first step.")
    errors = list(dict.fromkeys(e for _, context in _LOADED.values() for e in context.get("load_errors", [])))
    if errors:
        tr.line("")
        tr.line("While loading your notebooks, these cells raised:")
        for e in errors[:10]:
            tr.line(f"  {e}")

"""``nbgrader autograde`` without the student's kernel: the course's replacement for nbgrader's Execute step.

nbgrader's autograde pipeline normally runs each notebook top to bottom in a
Jupyter kernel and scores each test cell from its outputs. Student code in that
kernel runs next to whatever the test cells import, so it could read the hidden
checks or the quiz key and rewrite what the test cells report. This course's
``nbgrader_config.py`` replaces the ``Execute`` step (``autograde_preprocessors()``)
with ``GradeInSandbox``, and no kernel is ever started:

1. as nbgrader turns to a submission (its ``pre_convert_hook``: ``start_grading``), the
   submitted folder (``gradebook/submitted/<student>/<assignment>/``, what the student handed
   in) starts being graded ONCE, in a thread, beside nbgrader's own copying and sanitizing,
   by ``python -m autograder grade FOLDER --results R`` itself, in a process of its own
   (all notebooks in one boxed worker session, every check, public and hidden). The
   results are kept by (folder, sha256 of its files), so the submission's other
   notebooks reuse them;
2. every test cell (``grade`` and not ``solution``; its source is the instructor's,
   restored by nbgrader's sanitize step) gets its check's result as outputs:
   the line ``pass  <check>  2 / 2``, and for a failed check ``FAIL  <check>  0 / 2
   <message>`` plus an error output ``CheckFailed: <check>: <message>`` (no
   traceback). nbgrader's own ``SaveAutoGrades`` then scores an error output 0 and
   anything else full points, so the gradebook holds the CLI's points;
3. other code cells are not executed. Their outputs are left as nbgrader's
   sanitize step leaves them: cleared (``ClearOutput``). What a student typed
   into a notebook's outputs is not evidence of anything and could imitate a
   grader line or carry HTML into the feedback; the feedback shows only what
   the grader computed.

A test cell that names no check of this grader, and every check when the
sandbox itself cannot run, gets an error output saying so (score 0, fail
closed). ``GradeInSandbox.probe_timeout`` (``--GradeInSandbox.probe_timeout=30``;
else the course setting: ``BNLAB_PROBE_TIMEOUT``, else 30 s) bounds one probe and
``GradeInSandbox.time_limit`` the whole submission (``BNLAB_TIME_LIMIT``, else 600 s).
"""
import collections
import concurrent.futures
import logging
import os
import re
import subprocess
import sys
import tempfile
import time

from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Float

from .. import course

CHECK_CALL = re.compile(r"check(?:_hidden)?\('([^']+)'\)")   # the generated test cells (autograder/release.py)
COULD_NOT_START = "the grader could not start"
CACHE_SIZE = 4                  # submissions whose results are kept (nbgrader grades one at a time)
CLI_GRACE_S = 120               # beyond the time limit: the CLI's own start and reports
REFUSED = {3: "no sandbox on the grading machine"}   # the CLI's exit status when it refuses to grade
LOG = logging.getLogger(__name__)
GRADER_HOME = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # holds autograder/


# ---- what a test cell shows -----------------------------------------------------------

def check_of(cell):
    """The check id a test cell calls, or None when it calls none or several."""
    ids = CHECK_CALL.findall(cell.get("source", ""))
    return ids[0] if len(ids) == 1 else None


def is_test_cell(cell):
    return cell.get("cell_type") == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def check_line(check_id, passed, score, max_score, message=""):
    """``pass  batch_norm.returns_triple  1 / 1``, the message after two spaces; as ``check()`` prints it."""
    line = f"{'pass' if passed else 'FAIL'}  {check_id}  {score:g} / {max_score:g}"
    return line + (f"  {message}" if message else "")


def test_cell_outputs(check_id, passed, score, max_score, message=""):
    """The outputs nbgrader scores: a stdout line, and for a failure an error output (score 0)."""
    outputs = [new_output("stream", name="stdout", text=check_line(check_id, passed, score, max_score, message) + "\n")]
    if not passed:
        text = f"{check_id}: {message}"
        lines = text.splitlines() or [text]
        outputs.append(new_output("error", ename="CheckFailed", evalue=text,
                                  traceback=[f"CheckFailed: {lines[0]}"] + lines[1:]))
    return outputs


def failed_outputs(message, check_id="this test cell"):
    return [new_output("error", ename="CheckFailed", evalue=f"{check_id}: {message}",
                       traceback=[f"CheckFailed: {check_id}: {message}"])]


# ---- grading a submitted folder once ----------------------------------------------------

_GRADED = collections.OrderedDict()   # (folder, tree hash, probe timeout, time limit) -> grading() entry
_GRADING = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bnlab-grade")   # one at a time


def grade_folder(folder, probe_timeout=None, time_limit=None):
    """{check id: runner.Result} for every check on ``folder``, from the CLI itself: ``python -m autograder
    grade FOLDER --results R`` (sandboxed), in a process of its own. So the gradebook holds exactly the
    CLI's results, and the grading runs beside nbgrader's own work on another core (a thread would share
    nbgrader's interpreter lock). Settings left None are the course's (``course.setting``).

    Never raises for a submission's sake; when the grader cannot run, or refuses to (no sandbox here:
    exit status 3), every check fails with a message for the instructor."""
    probe_timeout = course.setting("probe_timeout", probe_timeout)
    time_limit = course.setting("time_limit", time_limit)
    with tempfile.TemporaryDirectory(prefix="bnlab-nbgrader-") as tmp:
        path = os.path.join(tmp, "results.json")
        cmd = [sys.executable, "-m", "autograder", "grade", folder, "--quiet", "--results", path,
               "--probe-timeout", repr(probe_timeout), "--time-limit", repr(time_limit)]
        try:
            proc = subprocess.run(cmd, cwd=GRADER_HOME, capture_output=True, text=True,
                                  timeout=time_limit + CLI_GRACE_S)
            why = None if proc.returncode == 0 else REFUSED.get(proc.returncode, f"exit status {proc.returncode}")
            if why is not None:   # the grader's own words are for the instructor, never in a student's feedback
                LOG.error("python -m autograder grade %s: %s; it said:\n%s", folder, why, proc.stderr[-3000:])
            else:
                from .batch import read_results   # the CLI's results.json, as grade-batch reads it back
                data = read_results(path) or {}
        except (OSError, subprocess.TimeoutExpired) as exc:
            LOG.error("python -m autograder grade %s: %s: %s", folder, type(exc).__name__, exc)
            why = type(exc).__name__
    if why is None:
        try:
            return {t["name"]: from_report(t) for t in data["tests"]}
        except (KeyError, TypeError, ValueError) as exc:
            why = f"an unreadable report ({type(exc).__name__}: {exc})"
    from ..core import runner
    reason = f"{COULD_NOT_START} ({why}); please tell your instructor"
    return {c.id: runner.Result(c.id, c.piece, c.title, 0.0, c.points, c.hidden, False, reason, 0.0)
            for c in runner.selected_checks(include_hidden=True)}


def from_report(test):
    """A ``runner.Result`` from one test of the CLI's results.json (``report.gradescope``: its output is
    the check's title, then its message)."""
    from ..core.runner import Result
    title, _, message = str(test["output"]).partition("\n")
    score, max_score = float(test["score"]), float(test["max_score"])
    return Result(str(test["name"]), str(test["name"]).split(".")[0], title, score, max_score,
                  test.get("visibility") != "visible", test["status"] == "passed", message, 0.0)


def grading(folder, probe_timeout=None, time_limit=None):
    """The cache entry of this folder content: {"future": of (results, seconds), "logged": bool}; the
    grading starts (in a thread of its own) on the first call, later calls get the same entry."""
    from .batch import tree_hash
    folder = os.path.realpath(folder)
    key = (folder, tree_hash(folder), probe_timeout, time_limit)
    if key not in _GRADED:
        _GRADED[key] = {"future": _GRADING.submit(timed, grade_folder, folder, probe_timeout, time_limit),
                        "logged": False}
        while len(_GRADED) > CACHE_SIZE:
            _GRADED.popitem(last=False)
    return _GRADED[key]


def timed(fn, *args):
    start = time.monotonic()
    return fn(*args), time.monotonic() - start


def graded(folder, probe_timeout=None, time_limit=None, log=None):
    """``grade_folder``, once per folder content: later calls for the same files reuse the results."""
    entry = grading(folder, probe_timeout, time_limit)
    results, seconds = entry["future"].result()
    if log is not None and not entry["logged"]:
        entry["logged"] = True
        for message in {r.message for r in results.values() if r.message.startswith(COULD_NOT_START)}:
            log.error("%s: %s", folder, message)
        log.info("Graded %s in the sandbox: %g / %g points in %.1f s", folder, sum(r.score for r in results.values()),
                 sum(r.max_score for r in results.values()), seconds)
    return results


def start_grading(assignment=None, student=None, notebooks=(), **_):
    """nbgrader's pre-convert hook (``c.Autograde.pre_convert_hook``, nbgrader_config.py): start grading
    the folder the ``notebooks`` were handed in from before nbgrader copies, sanitizes and records
    them (about a second per student); ``GradeInSandbox`` then takes the results from ``grading``."""
    from traitlets.config import Application
    if not notebooks or not Application.initialized():
        return
    settings = GradeInSandbox(config=Application.instance().config)
    grading(os.path.dirname(notebooks[0]), course.setting("probe_timeout", settings.probe_timeout),
            course.setting("time_limit", settings.time_limit))


# ---- the nbgrader step ------------------------------------------------------------------

class GradeInSandbox(NbGraderPreprocessor):
    """Writes each test cell's outputs from the CLI's grading of the submitted folder; runs no kernel."""

    probe_timeout = Float(None, allow_none=True, help="seconds one probe may take (default: the course "
                          "setting, $BNLAB_PROBE_TIMEOUT else 30)").tag(config=True)
    time_limit = Float(None, allow_none=True, help="seconds for one whole submission (default: the course "
                       "setting, $BNLAB_TIME_LIMIT else 600)").tag(config=True)

    def submitted_folder(self, student, assignment):
        """The folder the student handed in: nbgrader's CourseDirectory, through the exporter running this step."""
        coursedir = getattr(getattr(self.parent, "parent", None), "coursedir", None)
        if coursedir is None:
            raise RuntimeError("GradeInSandbox runs inside `nbgrader autograde` only (no course directory here)")
        return coursedir.format_path(coursedir.submitted_directory, student, assignment)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        folder = self.submitted_folder(info["student"], info["assignment"])
        self.results = graded(folder, course.setting("probe_timeout", self.probe_timeout),
                              course.setting("time_limit", self.time_limit), log=self.log)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        cell.execution_count = None
        cell.outputs = []
        if is_test_cell(cell):
            check_id = check_of(cell)
            result = self.results.get(check_id)
            if result is None:
                cell.outputs = failed_outputs("this test cell calls no check of this grader; "
                                              "please tell your instructor", check_id or "this test cell")
            else:
                cell.outputs = test_cell_outputs(result.id, result.passed, result.score, result.max_score,
                                                 result.message)
        return cell, resources


def autograde_preprocessors():
    """nbgrader's own autograde pipeline with its ``Execute`` step replaced by ``GradeInSandbox``."""
    from nbgrader.converters import Autograde
    steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
    if Execute not in steps:
        raise RuntimeError("this nbgrader's autograde pipeline has no Execute step to replace; "
                           "autograder/nbgrader_autograde.py needs updating")
    return [GradeInSandbox if step is Execute else step for step in steps]

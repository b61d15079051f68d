"""Run checks against one submission and collect results. Fail closed: any error scores zero.

``grade_submission(path, ...)`` is the one way every door grades a submission
(the CLI, grade-batch, Gradescope, nbgrader-verify, the tests): open a handle
on the student's code (a sandboxed worker, or in-process for trusted runs),
select the checks, run them in canonical order, close the handle.
"""
import contextlib
import dataclasses
import importlib
import pkgutil
import time
import traceback

from .. import course
from .check import PIECES, REGISTRY, Fail
from .student import StudentError

WHOLE_RUN_LIMIT_S = course.SETTINGS["time_limit"].default
PACKAGE = __package__.rpartition(".")[0]   # "autograder" (or "bnlab_public" in the students' copy)


class MissingHidden(Exception):
    """Hidden checks were asked for, but this copy of the grader (the students') has none."""


@dataclasses.dataclass
class Result:
    id: str
    piece: str
    title: str
    score: float
    max_score: float
    hidden: bool
    passed: bool
    message: str
    seconds: float


def import_checks(include_hidden):
    """Import the check modules so they register; hidden ones only if asked and present."""
    packages = ["checks"] + (["hidden"] if include_hidden else [])
    for name in packages:
        try:
            package = importlib.import_module(f"{PACKAGE}.{name}")
        except ModuleNotFoundError:
            if name == "hidden":
                raise MissingHidden("the hidden checks are not part of this copy of the grader") from None
            raise
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")


def canonical_order(check):
    """Lesson order of pieces, public before hidden, then module and line: never the import order."""
    judge = check.judge
    return (PIECES.index(check.piece), check.hidden, judge.__module__.rsplit(".", 1)[-1],
            judge.__code__.co_firstlineno)


def selected_checks(include_hidden, only=None):
    import_checks(include_hidden)
    checks = sorted((c for c in REGISTRY.values() if include_hidden or not c.hidden), key=canonical_order)
    if only:
        checks = [c for c in checks if c.id in only or c.piece in only]
    return checks


def run_one(check, student, context):
    start = time.monotonic()
    passed, message = False, ""
    try:
        note = check.judge(student)  # a judge may return a note for the student (e.g. which data set was used)
        passed = True
        message = note if isinstance(note, str) else ""
    except Fail as exc:
        message = str(exc)
    except StudentError as exc:
        message = f"{exc}"
        if "is not defined" in message and context.get("load_errors"):
            message += ". Loading your submission reported: " + "; ".join(context["load_errors"][:3])
    except Exception as exc:  # the grader's own bug: fail closed, never a traceback for the student
        if course.setting("debug"):
            traceback.print_exc()
        message = f"the grader could not finish this check ({type(exc).__name__}); please tell your instructor"
    return Result(check.id, check.piece, check.title, check.points if passed else 0.0, check.points,
                  check.hidden, passed, message, time.monotonic() - start)


def inventory(student):
    """What the submission defines and what loading it reported (the context every check's message may use)."""
    try:
        return student.inventory()
    except StudentError as exc:
        return {"defined": [], "load_errors": [str(exc)]}


def grade(student, checks, time_limit=WHOLE_RUN_LIMIT_S):
    deadline = time.monotonic() + time_limit
    context = inventory(student)
    results = []
    for check in checks:
        if time.monotonic() > deadline:
            results.append(Result(check.id, check.piece, check.title, 0.0, check.points, check.hidden, False,
                                  f"not graded: the time limit for the whole submission ({time_limit:.0f} s) ran out", 0.0))
            continue
        results.append(run_one(check, student, context))
    return results, context


@dataclasses.dataclass
class Graded:
    results: list      # [Result], in canonical order
    context: dict      # the inventory: names defined, load errors
    output: str        # what the submission printed (capped), after a line on how it was boxed


@contextlib.contextmanager
def open_student(path, sandboxed=True, probe_timeout=None, device=None, unsandboxed=None):
    """A handle on the submission at ``path``: a boxed worker (``sandboxed``), else this process
    (trusted code only). ``device`` is where the training check trains; ``unsandboxed``: let the
    worker run where its private file system cannot be built (else ``sandbox.NoSandbox``)."""
    from .student import InProcessStudent, SandboxStudent
    timeout = course.setting("probe_timeout", probe_timeout)
    if sandboxed:
        student = SandboxStudent(path, probe_timeout=timeout,
                                 require_jail=not course.setting("unsandboxed", unsandboxed))
    else:
        student = InProcessStudent(path)
    student.device = course.setting("device", device)
    try:
        yield student
    finally:
        student.close()


def grade_submission(path, include_hidden=True, only=None, sandboxed=True, probe_timeout=None,
                     time_limit=None, device=None, unsandboxed=None):
    """Grade the submission at ``path`` (a notebook, a folder of notebooks or a .py file) with the
    public (and hidden) checks, or those named in ``only`` (ids or pieces). Settings left None are
    resolved by ``course.setting``. Raises MissingHidden, course.SettingError, sandbox.NoSandbox (no private
    file system here, and ``unsandboxed`` not set: no student code ran); never for the student's code."""
    limit = course.setting("time_limit", time_limit)
    with open_student(path, sandboxed, probe_timeout, device, unsandboxed) as student:
        checks = selected_checks(include_hidden, only)   # imports torch while the worker starts
        results, context = grade(student, checks, time_limit=limit)
    return Graded(results, context, student.output())

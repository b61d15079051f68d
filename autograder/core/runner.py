"""Run checks against one submission and collect results. Fail closed: any error scores zero.

``grade_submission(path, ...)`` is the one way every door grades a submission
(the CLI, grade-batch, Gradescope, nbgrader-verify, the tests): open a handle
on the student's code (a sandboxed worker, or in-process for trusted runs),
select the checks, run them in canonical order, close the handle.
"""
import concurrent.futures
import contextlib
import dataclasses
import importlib
import pkgutil
import time
import traceback

from .. import course
from .check import PIECES, PREPARATIONS, REGISTRY, Fail
from .student import StudentError, time_limit_message

WHOLE_RUN_LIMIT_S = course.SETTINGS["time_limit"].default
PACKAGE = __package__.rpartition(".")[0]   # "autograder" (or "bnlab_public" in the students' copy)
# Pieces whose code runs another piece's (course.py says which): a piece that RUNS_ON a hung one is not
# run; one that MAY_RUN it is probed with at most SUSPECT_TIMEOUT_S. So a batch_norm that never returns
# costs one probe timeout, one short one and two worker restarts (tests/test_hostile.py::test_never_returns).
RUNS_ON = course.RUNS_ON
MAY_RUN = course.MAY_RUN
SUSPECT_TIMEOUT_S = course.SUSPECT_TIMEOUT_S


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


def failed(check, message):
    return Result(check.id, check.piece, check.title, 0.0, check.points, check.hidden, False, message, 0.0)


def scan_for_tampering(student):
    """tamper.scan of the submission the student handle was opened on ([] when it has no path)."""
    path = getattr(student, "path", None)
    if not path:
        return []
    try:
        from . import tamper
    except ImportError:   # an older vendored copy of the grader
        return []
    return tamper.scan(path)


def grade(student, checks, time_limit=WHOLE_RUN_LIMIT_S, started=None, findings=None, prepared=None):
    """Run ``checks``; returns (results, context). ``context`` holds the inventory and ``tampering``
    (``tamper.Finding`` list). Hard limits: the whole run, loading included, ends by ``started``
    (``time.monotonic()``, default now) + ``time_limit``; a piece whose probe timed out is not probed
    again (nor the pieces in ``RUNS_ON`` that use it); a flagged submission scores zero on every
    check that relied on an observation made in its process (``Student.observed``). ``prepared``:
    {piece: future of its preparation (``check.prepares``)}, awaited before the piece's first check."""
    prepared = prepared or {}
    deadline = (time.monotonic() if started is None else started) + time_limit
    student.set_deadline(deadline, time_limit)
    findings = scan_for_tampering(student) if findings is None else findings   # given: scanned once already
    context = inventory(student)
    context["tampering"] = findings
    results, hung = [], {}
    for check in checks:
        blocked = [p for p in (check.piece,) + RUNS_ON.get(check.piece, ()) if p in hung]
        if time.monotonic() >= deadline:
            results.append(failed(check, time_limit_message(time_limit)))
            continue
        if blocked:
            piece = blocked[0]
            uses = "" if piece == check.piece else f"; {check.piece} runs your {piece}"
            results.append(failed(check, f"not run: {piece} timed out in an earlier check ({hung[piece]}{uses})"))
            continue
        if check.piece in prepared:
            concurrent.futures.wait([prepared[check.piece]], timeout=max(0.0, deadline - time.monotonic()))
        student.begin_check(cap=SUSPECT_TIMEOUT_S if any(p in hung for p in MAY_RUN.get(check.piece, ())) else None)
        result = run_one(check, student, context)
        if student.timed_out:
            hung.setdefault(check.piece, check.id)
        if findings and student.observed:
            result = dataclasses.replace(result, score=0.0, passed=False, message=(
                f"scored zero: this check relies on {', '.join(sorted(student.observed))}, observed inside your "
                f"process, and {tamper_summary(findings)}. (Graded as if not flagged: "
                f"{'passed' if result.passed else 'failed'}{': ' + result.message if result.message else ''})"))
        results.append(result)
    return results, context


@dataclasses.dataclass
class Graded:
    results: list      # [Result], in canonical order
    context: dict      # the inventory (names defined, load errors) and ``tampering`` (tamper findings)
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


@contextlib.contextmanager
def preparing(checks, device):
    """{piece: future} of the preparations (``check.prepares``) of the pieces in ``checks``, run one after
    another in a thread of their own while the workers answer; left running on exit, never awaited
    past the checks (a daemon-like pool: ``shutdown(wait=False)``)."""
    pieces = [p for p in dict.fromkeys(c.piece for c in checks) if p in PREPARATIONS]
    if not pieces:
        yield {}
        return
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bnlab-prepare")
    try:
        yield {p: pool.submit(quietly, PREPARATIONS[p], device) for p in pieces}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def quietly(fn, *args):
    """A preparation's errors are the checks' to find and report."""
    try:
        fn(*args)
    except Exception:
        if course.setting("debug"):
            traceback.print_exc()


def wants_own_worker(only):
    """Whether a selection (``only``: ids or pieces, None for all) may hold a piece of OWN_WORKER_PIECES."""
    return only is None or any(o.split(".")[0] in course.OWN_WORKER_PIECES for o in only)


def grade_submission(path, include_hidden=True, only=None, sandboxed=True, probe_timeout=None,
                     time_limit=None, device=None, unsandboxed=None, started=None, side_worker=None):
    """Grade the submission at ``path`` (a notebook, a folder of notebooks or a .py file) with the
    public (and hidden) checks, or those named in ``only`` (ids or pieces).

    Settings left None are resolved by ``course.setting``; the time limit counts from ``started``
    (``time.monotonic()``, default now), starting the worker and loading included. With ``side_worker``
    (sandboxed only), the pieces in ``course.OWN_WORKER_PIECES`` (the training run) are graded by a
    second worker in a thread, started at once beside the first: the same checks, the same results,
    in canonical order. Raises MissingHidden, course.SettingError, sandbox.NoSandbox (no private file
    system here, and ``unsandboxed`` not set: no student code ran); never for the student's code."""
    limit = course.setting("time_limit", time_limit)
    started = time.monotonic() if started is None else started
    beside = sandboxed and course.setting("side_worker", side_worker) and wants_own_worker(only)
    with contextlib.ExitStack() as stack:
        student = stack.enter_context(open_student(path, sandboxed, probe_timeout, device, unsandboxed))
        side = stack.enter_context(open_student(path, sandboxed, probe_timeout, device, unsandboxed)) \
            if beside else None
        checks = selected_checks(include_hidden, only)   # imports torch while the workers start
        prepared = stack.enter_context(preparing(checks, student.device)) if sandboxed else {}
        apart = [c for c in checks if c.piece in course.OWN_WORKER_PIECES] if side else []
        if not apart:
            results, context = grade(student, checks, limit, started, prepared=prepared)
        else:
            findings = scan_for_tampering(student)   # one scan of the submission serves both workers
            with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bnlab-side") as pool:
                future = pool.submit(grade, side, apart, limit, started, findings, prepared)
                results, context = grade(student, [c for c in checks if c not in apart], limit, started, findings,
                                         prepared)
                results += future.result()[0]
            order = {c.id: i for i, c in enumerate(checks)}
            results.sort(key=lambda r: order[r.id])
    output = student.output()
    if side is not None and side.printed().strip() and side.printed() != student.printed():
        output += "\n--- printed by the worker that ran the training checks ---\n" + side.printed()
    return Graded(results, context, output)


def tamper_summary(findings):
    from . import tamper
    return tamper.summary(findings, limit=3)

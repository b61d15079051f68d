"""Grading inside a notebook: ``check(*ids)`` runs the named checks and reports in the cell.

The autograder test cells of the lesson notebooks call it::

    from bnlab_public.notebook import check       # the public copy shipped to students
    check("batch_norm.returns_triple")

The checks probe the names the kernel has defined (the calling cell's globals;
nothing is reloaded), in this process: a student running the cell, ``nbgrader
validate``, pytest. ``nbgrader autograde`` never runs these cells: the course's
``nbgrader_config.py`` replaces nbgrader's kernel step with ``GradeInSandbox``
(``autograder/instructor/nbgrader_autograde.py``, the CLI's sandboxed grading of the whole
submitted folder).

One line per check goes to stdout ("pass/FAIL id points / max
message") and a failure raises ``CheckFailed`` (an ``AssertionError``), so nbgrader
scores the cell zero. Its traceback, as IPython shows it, is the messages only:
no grader frames and no line of the cell (hidden test cells' source must not
reach the feedback). Nothing goes to stderr (nbgrader zeroes a cell that writes
there); the kernel's random state and PyTorch's determinism setting are restored.

``NOTEBOOK_OF_PIECE`` (from ``course.py``) says which lesson notebook holds each piece's
test cells.
"""
import contextlib
import importlib.util
import sys
import warnings

import torch

from . import course
from .core import runner
from .core.student import InProcessStudent
from .student_side.base import deterministic
from .student_side.session import Session

NOTEBOOK_OF_PIECE = course.NOTEBOOK_OF_PIECE


class CheckFailed(AssertionError):
    """One or more checks failed; ``str()`` is their messages, one per line."""

    def _render_traceback_(self):
        """What IPython shows instead of a traceback: the messages, no code."""
        return [f"{type(self).__name__}: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines() or [""])]


class NamespaceSession(Session):
    """A Session over names that already exist (a kernel's globals), without loading anything."""

    def __init__(self, names, errors=()):
        self.names = {k: v for k, v in names.items() if not k.startswith("__")}
        self.errors = list(errors)


class NamespaceStudent(InProcessStudent):
    """``InProcessStudent`` over a namespace: same probes, same wire round-trip."""

    def __init__(self, names):
        self.session = NamespaceSession(names)


def has_hidden():
    """True in the instructor's grader, False in the copy shipped to students."""
    return importlib.util.find_spec(f"{__package__}.hidden") is not None


@contextlib.contextmanager
def quiet_and_restored():
    """No warnings, stderr folded into stdout, RNG and determinism settings put back."""
    was = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        deterministic(True, warn_only=True)
        try:
            yield
        finally:
            deterministic(was, warn_only=warn_only)


def grade_names(names, ids):
    """Results of the checks ``ids`` (in that order) on ``names``; unknown ids are reported, not run."""
    with quiet_and_restored():
        known = {c.id: c for c in runner.selected_checks(has_hidden())}
        unknown = [i for i in ids if i not in known]
        chosen = [known[i] for i in ids if i in known]
        results, _ = runner.grade(NamespaceStudent(names), chosen)
    return results, unknown


def check(*ids, namespace=None):
    """Grade the calling cell's namespace with the checks ``ids``; CheckFailed if any fails."""
    __tracebackhide__ = True  # IPython and pytest hide this frame: the student sees the message only
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    results, unknown = grade_names(namespace, ids)
    failures = []
    for r in results:
        print(f"{'pass' if r.passed else 'FAIL'}  {r.id}  {r.score:g} / {r.max_score:g}"
              + ("" if r.passed else f"  {r.message}"))
        if not r.passed:
            failures.append(f"{r.id}: {r.message}")
    for i in unknown:
        line = (f"{i}: this check is not part of this copy of the grader "
                f"(the notebook is older or newer than the grader; ask your instructor)")
        print(f"FAIL  {line}")
        failures.append(line)
    if failures:
        raise CheckFailed("\n".join(failures)) from None

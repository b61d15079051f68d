"""A check: an id, the piece it concerns, points, a visibility, and a judge.

A check is a plain function ``judge(student)`` that asks the student's code for
values through ``student.probe(...)`` (see ``student_side/probes.py``), computes
what the answer should be itself, and raises ``Fail`` with a message a student can
act on when it differs. Returning normally is a pass. Points sit on the
decorator, so the rubric is the registry itself (``rubric()``) and totals are
always derived.
"""
import dataclasses
import math

from ..course import PIECES
from .student import Returned, StudentError, Unsupported


@dataclasses.dataclass(frozen=True)
class Check:
    id: str
    piece: str
    points: float
    hidden: bool
    title: str
    judge: object


REGISTRY = {}


def check(id, piece, points, title, hidden=False):
    if piece not in PIECES:
        raise ValueError(f"unknown piece {piece!r} for check {id}")
    if not (isinstance(points, (int, float)) and points > 0):
        raise ValueError(f"check {id}: points must be a positive number")

    def register(judge):
        if id in REGISTRY:
            raise ValueError(f"check id {id} registered twice")
        REGISTRY[id] = Check(id, piece, float(points), hidden, title, judge)
        return judge
    return register


PREPARATIONS = {}   # piece -> fn(device): fills the oracle's caches for that piece's checks


def prepares(piece):
    """Register ``fn(device)``, which computes ahead what the checks of ``piece`` need from the grader's
    own oracle and caches it (no student code, no probe, nothing returned). ``runner.grade_submission``
    runs it in a thread of its own while a worker answers other checks, and waits for it before the
    first check of ``piece``; an error in it is ignored (the check then computes, and reports, itself)."""
    if piece not in PIECES:
        raise ValueError(f"unknown piece {piece!r}")

    def register(fn):
        PREPARATIONS[piece] = fn
        return fn
    return register


def rubric(include_hidden=True):
    return [c for c in REGISTRY.values() if include_hidden or not c.hidden]


class Fail(Exception):
    """The student's answer is wrong; the message says what, and why it matters."""


# ---- judging helpers: each raises Fail with expected / got / hint ---------

def describe(value):
    if isinstance(value, Returned):
        return f"a tensor of shape {tuple(value.value.shape)}"
    if isinstance(value, Unsupported):
        return value.what
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    name = type(value).__name__
    article = "an" if name[0] in "aeiouAEIOU" else "a"
    return f"{article} {name} ({value!r:.60})"


def tensor(value, what):
    """The tensor inside a returned value, or Fail naming what came back instead."""
    if not isinstance(value, Returned):
        raise Fail(f"{what}: expected a tensor, got {describe(value)}.")
    return value.value


def expect_shape(value, shape, what, hint=""):
    t = tensor(value, what)
    if tuple(t.shape) != tuple(shape):
        raise Fail(f"{what}: expected shape {tuple(shape)}, got {tuple(t.shape)}. {hint}".strip())
    return t


def expect_finite(t, what):
    import torch   # here, not at the top: `python -m autograder grade` starts the worker before importing torch
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).sum().item()
        raise Fail(f"{what}: {bad} value(s) are NaN or infinite. Did you divide by sqrt(var) without eps, "
                   f"or take the square root of a negative number?")


def expect_close(value, expected, what, hint="", rtol=1e-4, atol=1e-5):
    """Compare in float64 with a stated tolerance; the message shows the worst element."""
    import torch
    got = tensor(value, what) if isinstance(value, (Returned, Unsupported)) or not isinstance(value, torch.Tensor) else value
    expected = expected.detach()
    if tuple(got.shape) != tuple(expected.shape):
        raise Fail(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}. {hint}".strip())
    expect_finite(got, what)
    got64, exp64 = got.double(), expected.double()
    err = (got64 - exp64).abs()
    allowed = atol + rtol * exp64.abs()
    if not bool((err <= allowed).all()):
        i = int(torch.argmax(err - allowed))
        index = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), tuple(got.shape))) if got.dim() else ()
        raise Fail(f"{what}: expected {fmt(exp64.flatten()[i])} at index {index}, got {fmt(got64.flatten()[i])} "
                   f"(tolerance {atol:g} + {rtol:g}·|expected|; {int((err > allowed).sum())} of {err.numel()} values differ). "
                   f"{hint}".strip())
    return got


def fmt(x):
    x = float(x)
    return f"{x:.6g}" if math.isfinite(x) else str(x)


def expect(condition, message):
    if not condition:
        raise Fail(message)


__all__ = ["Check", "REGISTRY", "PREPARATIONS", "check", "prepares", "rubric", "Fail", "StudentError", "tensor", "expect_shape",
           "expect_close", "expect_finite", "expect", "describe"]

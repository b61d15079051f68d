"""One loaded submission answering probe requests; shared by the worker and in-process grading."""
import torch

from . import probes
from .base import deterministic, without_dynamo_import
from .loader import load_submission, locate
from .wire import clip, error_reply, to_plain


class Session:
    def __init__(self, path):
        deterministic(True, warn_only=True)
        self.names, errors = load_submission(path)
        self.errors = [clip(e) for e in errors[:100]]  # a notebook of failing cells sends a short list

    def handle(self, request):
        """request = {"probe": name, "kwargs": {...}} -> {"ok": value} or {"error": {...}}."""
        name = request.get("probe")
        try:
            if name == "inventory":
                return {"ok": probes.inventory(self.names, self.errors, **request.get("kwargs", {}))}
            fn = probes.PROBES.get(name)
            if fn is None:
                return error_reply("ProbeError", f"unknown probe {clip(name, 100)!r}")
            probes.seed_all(0)
            with without_dynamo_import():
                return {"ok": fn(self.names, **request.get("kwargs", {}))}
        except probes.ProbeError as exc:
            return error_reply("ProbeError", exc)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # student code may raise anything, SystemExit included
            return failure(exc)


def failure(exc):
    """The error reply for an exception from student code; never raises, whatever the exception does."""
    try:
        where = locate(exc, "your code")
    except BaseException:  # a traceback that cannot be walked
        where = "your code"
    try:
        kind = type(exc).__name__
    except BaseException:
        kind = "Exception"
    return error_reply(kind, clip(exc).strip(), where)



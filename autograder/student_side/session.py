"""One loaded submission answering probe requests; shared by the worker and in-process grading."""
import torch

from . import probes
from .loader import load_submission, locate
from .wire import to_plain


class Session:
    def __init__(self, path):
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.names, self.errors = load_submission(path)

    def handle(self, request):
        """request = {"probe": name, "kwargs": {...}} -> {"ok": value} or {"error": {...}}."""
        name = request.get("probe")
        try:
            if name == "inventory":
                return {"ok": probes.inventory(self.names, self.errors, **request.get("kwargs", {}))}
            fn = probes.PROBES.get(name)
            if fn is None:
                return {"error": {"type": "ProbeError", "message": f"unknown probe {name!r}", "where": ""}}
            probes.seed_all(0)
            return {"ok": fn(self.names, **request.get("kwargs", {}))}
        except probes.ProbeError as exc:
            return {"error": {"type": "ProbeError", "message": str(exc), "where": ""}}
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # student code may raise anything, SystemExit included
            where = locate(exc, "your code")
            return {"error": {"type": type(exc).__name__, "message": str(exc).strip(), "where": where}}



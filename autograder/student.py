"""The grader's handle on a submission: ask a probe, get plain data back.

Two ways to reach the student's code, one interface:
- ``SandboxStudent``: a separate worker process (the default for the CLI);
- ``InProcessStudent``: the same probes in this process (students' own pytest runs,
  notebooks, and the isolation benchmark).
Both send every answer through the same encode/decode, so they grade identically.
"""
import dataclasses
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import torch

from .student_side import wire

PROBE_TIMEOUT_S = 60.0
OUTPUT_CAP = 64 * 1024


class StudentError(Exception):
    """The student's code failed while probed; ``str()`` is the student-facing message."""


@dataclasses.dataclass
class Returned:
    """A tensor that came back from the student's code, with where it came from."""
    value: torch.Tensor
    requires_grad: bool
    grad_fn: bool
    device: str


@dataclasses.dataclass
class Unsupported:
    what: str

    def __str__(self):
        return self.what


def unwrap(obj):
    """Turn the wire form into Returned / list / tuple / dict / scalars."""
    if type(obj) is dict:
        if "__tensor__" in obj:
            t = obj["__tensor__"]
            if type(t) is not torch.Tensor:
                return Unsupported("something that is not a tensor")
            return Returned(t, bool(obj["requires_grad"]), bool(obj["grad_fn"]), str(obj["device"]))
        if "__seq__" in obj:
            items = [unwrap(v) for v in obj["items"]]
            return tuple(items) if obj["__seq__"] == "tuple" else items
        if "__dict__" in obj:
            return {k: unwrap(v) for k, v in obj["__dict__"].items()}
        if "__unsupported__" in obj:
            return Unsupported(str(obj["__unsupported__"]))
        return {k: unwrap(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(unwrap(v) for v in obj)
    return obj


def error_message(err):
    if err["type"] == "ProbeError":
        return err["message"]
    if err["type"] == "NotImplementedError":
        return "not implemented yet (the stub still raises NotImplementedError)"
    text = f"{err['type']}: {err['message']}" if err["message"] else err["type"]
    return f"{text} (at {err['where']})" if err.get("where") else text


class Student:
    """Base: ``probe(name, **kwargs)`` returns unwrapped plain data or raises StudentError."""

    def probe(self, probe_name, /, **kwargs):
        response = self._ask({"probe": probe_name, "kwargs": kwargs})
        if "error" in response:
            raise StudentError(error_message(response["error"]))
        return unwrap(response["ok"])

    def inventory(self):
        return self.probe("inventory")

    def output(self):
        return ""

    def close(self):
        pass


class InProcessStudent(Student):
    def __init__(self, path):
        from .student_side.session import Session
        self.session = Session(path)

    def _ask(self, request):
        response = self.session.handle(wire.decode(wire.encode(request)[8:]))
        return wire.decode(wire.encode(response)[8:])


class CappedReader(threading.Thread):
    """Drains a pipe, keeps the first ``cap`` bytes and counts the rest."""

    def __init__(self, stream, cap=OUTPUT_CAP):
        super().__init__(daemon=True)
        self.stream, self.cap, self.kept, self.total = stream, cap, bytearray(), 0
        self.start()

    def run(self):
        while True:
            chunk = self.stream.read(65536)
            if not chunk:
                break
            self.total += len(chunk)
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]

    def text(self):
        text = self.kept.decode("utf-8", "replace")
        if self.total > len(self.kept):
            text += f"\n... [output truncated: {self.total} bytes in all, first {len(self.kept)} kept]"
        return text


def student_side_copy():
    """A folder holding only the code that may run beside the student's."""
    root = tempfile.mkdtemp(prefix="bnlab-worker-")
    src = os.path.join(os.path.dirname(__file__), "student_side")
    shutil.copytree(src, os.path.join(root, "student_side"), ignore=shutil.ignore_patterns("__pycache__"))
    return root


class SandboxStudent(Student):
    """The submission runs in a worker process; a dead or stuck worker is restarted for the next probe."""

    def __init__(self, path, probe_timeout=PROBE_TIMEOUT_S, launcher=None):
        self.path = os.path.abspath(path)
        self.probe_timeout = probe_timeout
        self.launcher = launcher
        self.code_dir = student_side_copy()
        self.proc = None
        self.load_failure = None
        self.outputs = []
        self._start()

    def _start(self):
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")}
        env.update(BNLAB_REQ_FD=str(req_r), BNLAB_RESP_FD=str(resp_w), BNLAB_SUBMISSION=self.path,
                   PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
        cmd = [sys.executable, "-I", "-c",
               f"import sys; sys.path.insert(0, {self.code_dir!r}); from student_side.worker import main; main()"]
        if self.launcher:
            cmd = self.launcher(cmd)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, cwd=os.path.dirname(self.path) if os.path.isfile(self.path) else self.path,
                                     pass_fds=(req_r, resp_w), start_new_session=True)
        os.close(req_r)
        os.close(resp_w)
        self.req = os.fdopen(req_w, "wb", buffering=0)
        self.resp = os.fdopen(resp_r, "rb", buffering=0)
        self.reader = CappedReader(self.proc.stdout)
        self.loaded = False

    def _read(self, timeout):
        """One answer, or None if the worker died or timed out."""
        deadline = time.monotonic() + timeout
        head = b""
        while len(head) < 8:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.resp], [], [], left)[0]:
                return "timeout"
            chunk = self.resp.read(8 - len(head))
            if not chunk:
                return None
            head += chunk
        n = int.from_bytes(head, "little")
        data = bytearray()
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.resp], [], [], left)[0]:
                return "timeout"
            chunk = self.resp.read(min(1 << 20, n - len(data)))
            if not chunk:
                return None
            data += chunk
        try:
            return wire.decode(bytes(data))
        except Exception:
            return {"error": {"type": "ProbeError", "message": "your code sent back something that is not plain data", "where": ""}}

    def _death(self, what):
        proc = self.proc
        self._stop()
        code = proc.returncode
        if what == "timeout":
            return f"timed out after {self.probe_timeout:.0f} s (an infinite loop, or far too much work?)"
        if code is not None and code < 0:
            return f"the process running your code was killed by signal {-code} (out of memory or a crash?)"
        return f"the process running your code exited (status {code}) before answering: does your code call exit()?"

    def _ask(self, request):
        if self.load_failure:
            return {"error": {"type": "ProbeError", "message": self.load_failure, "where": ""}}
        if self.proc is None:
            self._start()
        if not self.loaded:
            answer = self._read(self.probe_timeout)
            if not (isinstance(answer, dict) and answer.get("ok") == "loaded"):
                self.load_failure = "while loading your submission, " + self._death(answer)
                return {"error": {"type": "ProbeError", "message": self.load_failure, "where": ""}}
            self.loaded = True
        try:
            self.req.write(wire.encode(request))
        except (BrokenPipeError, OSError):
            return {"error": {"type": "ProbeError", "message": self._death(None), "where": ""}}
        answer = self._read(self.probe_timeout)
        if not isinstance(answer, dict):
            return {"error": {"type": "ProbeError", "message": self._death(answer), "where": ""}}
        return answer

    def _stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.req, self.resp):
            try:
                stream.close()
            except OSError:
                pass
        self.reader.join(timeout=5)
        self.outputs.append(self.reader.text())
        self.proc = None

    def output(self):
        return "".join(self.outputs)[: 2 * OUTPUT_CAP]

    def close(self):
        self._stop()
        shutil.rmtree(self.code_dir, ignore_errors=True)

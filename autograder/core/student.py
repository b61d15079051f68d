"""The grader's handle on a submission: ask a probe, get plain data back.

Two ways to reach the student's code, one interface:
- ``SandboxStudent``: a separate worker process (the default for the CLI);
- ``InProcessStudent``: the same probes in this process (students' own pytest runs,
  notebooks, and the isolation benchmark).
Both send every answer through the same encode/decode, so they grade identically.
"""
import dataclasses
import os
import secrets
import select
import subprocess
import time

# torch (and wire, which needs it) are imported where used, so that the CLI can
# start the worker before paying for `import torch` in the grader: both imports
# then overlap.

from .. import course

PROBE_TIMEOUT_S = course.SETTINGS["probe_timeout"].default
LOAD_TIMEOUT_S = course.SETTINGS["load_timeout"].default
OUTPUT_CAP = 24 * 1024     # all workers together (the report allows 32 KiB)


class StudentError(Exception):
    """The student's code failed while probed; ``str()`` is the student-facing message."""


@dataclasses.dataclass
class Returned:
    """A tensor that came back from the student's code, with where it came from."""
    value: "torch.Tensor"  # noqa: F821
    requires_grad: bool
    grad_fn: bool
    device: str


@dataclasses.dataclass
class Unsupported:
    what: str

    def __str__(self):
        return self.what


def unwrap(obj):
    """Turn the wire form into Returned / list / tuple / dict / scalars.

    A wrapper that is not exactly what ``wire.to_plain`` writes becomes ``Unsupported``
    (a forged answer fails its check, never the grader)."""
    import torch
    if type(obj) is dict:
        if "__tensor__" in obj:
            t = obj["__tensor__"]
            if type(t) is not torch.Tensor:
                return Unsupported("something that is not a tensor")
            flags = [obj.get(k) for k in ("requires_grad", "grad_fn", "device")]
            if type(flags[0]) is not bool or type(flags[1]) is not bool or type(flags[2]) is not str:
                return Unsupported("a tensor without its origin")
            return Returned(t, flags[0], flags[1], flags[2][:64])
        if "__seq__" in obj:
            items = obj.get("items")
            if type(items) not in (list, tuple):
                return Unsupported("a sequence without items")
            items = [unwrap(v) for v in items]
            return tuple(items) if obj["__seq__"] == "tuple" else items
        if "__dict__" in obj:
            inner = obj["__dict__"]
            if type(inner) is not dict:
                return Unsupported("a dict without items")
            return {k: unwrap(v) for k, v in inner.items()}
        if "__unsupported__" in obj:
            from ..student_side.wire import clip
            return Unsupported(clip(obj["__unsupported__"], 300))
        return {k: unwrap(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(unwrap(v) for v in obj)
    return obj


def error_message(err):
    """The student-facing text of an error reply; each part clipped again (``wire.clip``) on receipt."""
    from ..student_side.wire import MESSAGE_CHARS, NAME_CHARS, clip
    kind, message, where = clip(err["type"], NAME_CHARS), clip(err["message"], MESSAGE_CHARS), \
        clip(err.get("where", ""), NAME_CHARS)
    if kind == "ProbeError":
        return message
    if kind == "NotImplementedError":
        return "not implemented yet (the stub still raises NotImplementedError)"
    text = f"{kind}: {message}" if message else kind
    return f"{text} (at {where})" if where else text


# What the worker OBSERVES inside the student's process, where the student's code could rewrite it:
# probes that return such observations, and request flags that ask for them (see tamper.py and
# runner.grade: a flagged submission scores zero on every check that asked for one of these).
OBSERVING_PROBES = {"train": "the training run", "architecture": "the architecture shape tables"}
OBSERVING_FLAGS = {"trace": "the layer trace", "watch_norm_ops": "the normalisation-kernel watch"}


def observation_kinds(probe_name, kwargs):
    """The observation kinds a probe request asks for (a set of descriptions; empty for pure values)."""
    kinds = set()
    if probe_name in OBSERVING_PROBES:
        kinds.add(OBSERVING_PROBES[probe_name])
    stack = [kwargs]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kinds.update(OBSERVING_FLAGS[k] for k, v in item.items() if k in OBSERVING_FLAGS and v)
            stack.extend(v for v in item.values() if isinstance(v, (dict, list, tuple)))
        elif isinstance(item, (list, tuple)):
            stack.extend(v for v in item if isinstance(v, (dict, list, tuple)))
    return kinds


def time_limit_message(limit):
    return f"not graded: the time limit for the whole submission ({limit:g} s) ran out"


class Student:
    """Base: ``probe(name, **kwargs)`` returns unwrapped plain data or raises StudentError.

    Per check (``begin_check``), the handle records which observation kinds the check's probes
    asked for (``observed``) and whether one of them timed out (``timed_out``); ``deadline``
    (``time.monotonic()`` seconds, or None) bounds every probe, loading included."""

    observed = frozenset()
    timed_out = False
    deadline = None
    time_limit = None
    cap = None

    def begin_check(self, cap=None):
        """A new check starts; ``cap``: seconds its probes may take at most (None: the probe timeout)."""
        self.observed, self.timed_out, self.cap = frozenset(), False, cap

    def observe(self, *kinds):
        """Note observation kinds used by the current check (a judge reusing an earlier probe's answer)."""
        self.observed = frozenset(self.observed) | set(kinds)

    def set_deadline(self, deadline, time_limit):
        self.deadline, self.time_limit = deadline, time_limit

    def time_left(self):
        return None if self.deadline is None else self.deadline - time.monotonic()

    device = None   # where the training check trains ("auto", "cpu", "cuda"); None: course.setting decides

    def probe(self, probe_name, /, **kwargs):
        self.observe(*observation_kinds(probe_name, kwargs))
        response = self._ask({"probe": probe_name, "kwargs": kwargs})
        if "error" in response:
            raise StudentError(error_message(response["error"]))
        return unwrap(response["ok"])

    def inventory(self):
        return self.probe("inventory", expected=list(course.EXPECTED_NAMES))

    def printed(self):
        return ""

    def output(self):
        return ""

    def close(self):
        pass


class InProcessStudent(Student):
    def __init__(self, path):
        from ..student_side.session import Session
        self.path = os.path.abspath(path)     # what tamper.scan reads
        self.session = Session(path)

    def _ask(self, request):
        from ..student_side import wire
        response = self.session.handle(wire.decode(wire.encode(request)[8:]))
        return wire.decode(wire.encode(response)[8:])


MAX_ELEMENTS = 1 << 26    # largest tensor (elements) it will accept (the wire's REPLY budget is smaller)


def check_tensors(obj, depth=0):
    """Every tensor that came back is an ordinary dense CPU tensor of a sane size.

    ``wire.decode`` already refused everything but exactly ``torch.Tensor``;
    this also refuses sparse / quantized / meta layouts and tensors whose
    stride-0 views would make the grader allocate without bound."""
    import torch
    if type(obj) is torch.Tensor:
        if obj.layout is not torch.strided or obj.is_quantized or obj.device.type != "cpu" \
                or obj.numel() > MAX_ELEMENTS:
            raise ValueError("unsupported tensor")
    elif type(obj) in (list, tuple):
        for v in obj:
            check_tensors(v, depth + 1)
    elif type(obj) is dict:
        for v in obj.values():
            check_tensors(v, depth + 1)


def well_formed(answer):
    """{"ok": value} or {"error": {"type": str, "message": str, "where": str}}, nothing else."""
    if type(answer) is not dict or len(answer) != 1:
        return False
    if "ok" in answer:
        return True
    error = answer.get("error")
    return type(error) is dict and all(type(error.get(k)) is str for k in ("type", "message", "where"))


class SandboxStudent(Student):
    """The submission runs in a boxed worker process (see ``autograder/sandbox/``).

    Each probe has a wall-clock limit; a worker that dies or hangs during a
    probe is killed and a fresh one is started for the next probe. A worker
    that cannot load the submission fails every later probe at once."""

    def __init__(self, path, probe_timeout=PROBE_TIMEOUT_S, limits=None, isolate=True, load_timeout=None,
                 require_jail=None):
        from ..sandbox import Sandbox
        self.path = os.path.abspath(path)
        self.probe_timeout = probe_timeout
        self.load_timeout = max(probe_timeout, course.setting("load_timeout")) if load_timeout is None else load_timeout
        self.sandbox = Sandbox(self.path, limits=limits, isolate=isolate, require_jail=require_jail)
        self.proc = None
        self.load_failure = None
        self.outputs = []
        self._start()

    def _start(self):
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
        env.update(BNLAB_REQ_FD=str(req_r), BNLAB_RESP_FD=str(resp_w), PYTHONDONTWRITEBYTECODE="1",
                   OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
        out_r, out_w = os.pipe()
        try:
            self.proc = self.sandbox.start(env, (req_r, resp_w), out_w)
        finally:
            for fd in (req_r, resp_w, out_w):
                os.close(fd)
        self.req = os.fdopen(req_w, "wb", buffering=0)
        self.resp = os.fdopen(resp_r, "rb", buffering=0)
        from ..sandbox import CappedReader
        self.reader = CappedReader(os.fdopen(out_r, "rb", buffering=0))
        self.loaded = False

    def _write(self, data, deadline):
        """Send a request without ever blocking past the deadline (the worker may stop reading)."""
        view, fd = memoryview(data), self.req.fileno()
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                return "timeout"
            try:
                view = view[os.write(fd, view[: 1 << 16]):]
            except OSError:
                return None
        return True

    def _read(self, timeout, nonce=None):
        """One decoded answer; "timeout"; None if the worker died; "bad" if it sent garbage.

        Framing, budgets and decoding are ``wire``'s (``read_frame``, ``decode`` with
        ``wire.REPLY``): nothing the worker declares is allocated before it is checked.
        With ``nonce``, the answer must carry it (the worker echoes the request's): a frame
        the submission wrote onto the answer pipe itself, without the request, is "bad"."""
        from ..student_side import wire
        data = wire.read_frame(self.resp.fileno(), time.monotonic() + timeout, wire.REPLY)
        if not isinstance(data, bytearray):
            return data
        try:
            answer = wire.decode(data, wire.REPLY)
            check_tensors(answer)
        except Exception:
            return "bad"
        if nonce is not None:
            if type(answer) is not dict or answer.pop("nonce", None) != nonce:
                return "forged"
        return answer if well_formed(answer) else "bad"

    def _limit(self, timeout, capped=True):
        """(seconds this wait may take, whether the whole-run deadline is what bounds it). The check's
        ``cap`` bounds probes, never loading (a restarted worker loads the submission again)."""
        if capped and self.cap is not None:
            timeout = min(timeout, self.cap)
        left = self.time_left()
        if left is not None and left < timeout:
            return max(0.0, left), True
        return timeout, False

    def _death(self, what, limit=None, by_deadline=False):
        proc = self.proc
        if what is None:  # the worker closed its pipe: let it finish dying to learn why
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._stop()
        code = proc.returncode
        if what == "timeout" and by_deadline:
            return time_limit_message(self.time_limit)
        if what == "timeout":
            self.timed_out = True
            return f"timed out after {limit or self.probe_timeout:g} s (an infinite loop, or far too much work?)"
        if what == "forged":
            return ("an answer came back that the worker did not send for this request (something in the "
                    "submission wrote onto the grader's answer pipe); the worker was restarted")
        if what == "bad":
            return "your code sent back something that is not plain data (tensors, numbers, lists, dicts)"
        if code == -2:   # the worker re-raises KeyboardInterrupt (a ^C in the in-process doors) and Python dies of SIGINT
            return ("the process running your code was interrupted (SIGINT): does your code raise KeyboardInterrupt "
                    "or send itself a signal?")
        if code is not None and code < 0:
            name = {9: "SIGKILL", 11: "SIGSEGV", 6: "SIGABRT", 24: "SIGXCPU"}.get(-code, f"signal {-code}")
            return f"the process running your code was killed ({name}: out of memory, CPU limit or a crash?)"
        return f"the process running your code exited (status {code}) before answering: does your code call exit()?"

    def _ask(self, request):
        if self.load_failure:
            return {"error": {"type": "ProbeError", "message": self.load_failure, "where": ""}}
        left = self.time_left()
        if left is not None and left <= 0:
            if self.proc is not None:
                self._stop()
            return {"error": {"type": "ProbeError", "message": time_limit_message(self.time_limit), "where": ""}}
        if self.proc is None:
            self._start()
        if not self.loaded:
            timeout, by_deadline = self._limit(self.load_timeout, capped=False)
            answer = self._read(timeout)
            if not (isinstance(answer, dict) and answer.get("ok") == "loaded"):
                message = self._death(answer, self.load_timeout, by_deadline)
                self.timed_out = False        # loading, not this check's piece, hung: every check fails anyway
                if by_deadline and answer == "timeout":
                    return {"error": {"type": "ProbeError", "message": message, "where": ""}}
                self.load_failure = "while loading your submission, " + message
                return {"error": {"type": "ProbeError", "message": self.load_failure, "where": ""}}
            self.loaded = True
        from ..student_side import wire
        timeout, by_deadline = self._limit(self.probe_timeout)
        deadline = time.monotonic() + timeout
        nonce = secrets.token_hex(16)   # echoed by the worker: answers the submission forged lack it
        sent = self._write(wire.encode(dict(request, nonce=nonce)), deadline)
        if sent is not True:
            return {"error": {"type": "ProbeError", "message": self._death(sent, timeout, by_deadline), "where": ""}}
        answer = self._read(max(0.0, deadline - time.monotonic()), nonce)
        if not isinstance(answer, dict):
            return {"error": {"type": "ProbeError", "message": self._death(answer, timeout, by_deadline),
                              "where": ""}}
        return answer

    def _stop(self, linger=0.0):
        if self.proc is None:
            return
        for stream in (self.req, self.resp):  # a worker waiting for a request now exits
            try:
                stream.close()
            except OSError:
                pass
        self.sandbox.stop(self.proc, linger=linger)
        self.reader.join(timeout=10)
        self.outputs.append(self.reader.text())
        self.proc = None

    def printed(self):
        """What the submission printed (capped), across this handle's workers."""
        text = "".join(self.outputs)
        if len(text) > OUTPUT_CAP:
            text = text[: OUTPUT_CAP - 2048] + f"\n... [{len(text) - OUTPUT_CAP + 2048} characters cut] ...\n" \
                + text[-2048:]
        return text

    def output(self):
        """What the submission printed (capped), after one line saying how it was boxed."""
        return self.sandbox.summary() + "\n" + self.printed()

    def close(self):
        self._stop(linger=2.0)
        self.sandbox.cleanup()

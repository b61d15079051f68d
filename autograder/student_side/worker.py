"""The student's process: load the submission, then answer probe requests.

Launched by ``autograder/sandbox/`` (its bootstrap) as ``python -s -P -u``: its cwd is a copy of the
submission's folder, and ``sys.path`` holds a copy of ``student_side`` (first), the
interpreter's own folders, and that copy of the submission's folder (last), nothing
else. Requests come on one inherited pipe, answers go back on another; stdin is
/dev/null and stdout/stderr are the student's (captured and capped by the grader).
"""
import os
import sys

from . import wire
from .session import Session
from .wire import read_message


def harden(keep):
    """Before any student code: private file mode, and no file descriptor but
    stdin/stdout/stderr and our two pipes (which children do not inherit)."""
    os.umask(0o077)
    try:
        open_fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = range(3, 1024)
    for fd in open_fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd in keep:
        os.set_inheritable(fd, False)


def encode(answer):
    """One answer's frame, within the budget the grader will read (``wire.REPLY``)."""
    return wire.encode(answer, wire.REPLY)


def reply(response):
    """The answer's frame; an answer that cannot be sent (not plain data, over the wire's
    budget) becomes an error reply that can."""
    try:
        return encode(response)
    except Exception as exc:  # whatever the value did while being encoded
        error = wire.error_reply("ProbeError", f"could not send the answer back ({wire.clip(exc, 300)})")
        return encode(dict(error, nonce=response.get("nonce")))


def main():
    req_fd = int(os.environ["BNLAB_REQ_FD"])
    resp_fd = int(os.environ["BNLAB_RESP_FD"])
    path = os.environ["BNLAB_SUBMISSION"]
    for key in ("BNLAB_REQ_FD", "BNLAB_RESP_FD", "BNLAB_SUBMISSION"):
        del os.environ[key]
    harden((req_fd, resp_fd))
    sys.path.append(os.getcwd())  # the submission's own folder (a copy), as in Jupyter; last, so it shadows nothing
    requests = os.fdopen(req_fd, "rb")  # buffered: read(n) waits for all n bytes of a large request
    answers = os.fdopen(resp_fd, "wb")
    session = Session(path)
    answers.write(encode({"ok": "loaded"}))
    answers.flush()
    while True:
        request = read_message(requests)
        if request is None:
            break
        answer = session.handle(request)
        answer["nonce"] = request.get("nonce")   # the grader's, per request: a frame written without it is refused
        answers.write(reply(answer))
        answers.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

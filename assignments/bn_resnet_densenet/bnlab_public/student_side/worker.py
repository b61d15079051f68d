"""The student's process: load the submission, then answer probe requests.

Runs as ``python -I`` from a folder holding only ``student_side``. Requests come
on one inherited pipe, answers go back on another; stdin is /dev/null and
stdout/stderr are the student's (captured and capped by the grader).
"""
import os
import sys

from .session import Session
from .wire import encode, read_message


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


def main():
    req_fd = int(os.environ["BNLAB_REQ_FD"])
    resp_fd = int(os.environ["BNLAB_RESP_FD"])
    path = os.environ["BNLAB_SUBMISSION"]
    for key in ("BNLAB_REQ_FD", "BNLAB_RESP_FD", "BNLAB_SUBMISSION"):
        del os.environ[key]
    harden((req_fd, resp_fd))
    requests = os.fdopen(req_fd, "rb", buffering=0)
    answers = os.fdopen(resp_fd, "wb", buffering=0)
    session = Session(path)
    answers.write(encode({"ok": "loaded"}))
    while True:
        request = read_message(requests)
        if request is None:
            break
        response = session.handle(request)
        try:
            data = encode(response)
        except Exception as exc:  # a value torch.save cannot write
            data = encode({"error": {"type": "ProbeError", "message": f"could not send the answer back ({exc})", "where": ""}})
        answers.write(data)
    os._exit(0)


if __name__ == "__main__":
    main()

"""The student's process: load the submission, then answer probe requests.

Runs as ``python -I`` from a folder holding only ``student_side``. Requests come
on one inherited pipe, answers go back on another; stdin is /dev/null and
stdout/stderr are the student's (captured and capped by the grader).
"""
import os
import sys

from .session import Session
from .wire import encode, read_message


def main():
    req_fd = int(os.environ["BNLAB_REQ_FD"])
    resp_fd = int(os.environ["BNLAB_RESP_FD"])
    path = os.environ["BNLAB_SUBMISSION"]
    for key in ("BNLAB_REQ_FD", "BNLAB_RESP_FD", "BNLAB_SUBMISSION"):
        del os.environ[key]
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

"""Hostile (placed after the reference): correct code that leaves processes behind:
a setsid'd double-forked child and a new-session subprocess, both sleeping for long.
Expected: full marks, and no such process survives grading."""
import os
import subprocess

subprocess.Popen(["sleep", "987.655"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "987.654"])
    os._exit(0)

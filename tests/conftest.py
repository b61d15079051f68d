import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

torch.set_num_threads(1)  # 2 shared cores: one thread per process is several times faster here

from autograder import runner  # noqa: E402
from autograder.student import InProcessStudent  # noqa: E402

REFERENCE = os.path.join(ROOT, "tests", "submissions", "reference.py")


def grade_path(path, only=None, include_hidden=True):
    """Grade in-process; returns {check id: Result}."""
    student = InProcessStudent(path)
    try:
        results, _ = runner.grade(student, runner.selected_checks(include_hidden, only))
    finally:
        student.close()
    return {r.id: r for r in results}


@pytest.fixture(scope="session")
def reference_results():
    return grade_path(REFERENCE)

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

torch.set_num_threads(1)  # 2 shared cores: one thread per process is several times faster here

from autograder.core import runner  # noqa: E402

REFERENCE = os.path.join(ROOT, "tests", "submissions", "reference.py")


def grade_path(path, only=None, include_hidden=True):
    """Grade in-process; returns {check id: Result}, in canonical order."""
    graded = runner.grade_submission(path, include_hidden=include_hidden, only=only, sandboxed=False)
    return {r.id: r for r in graded.results}


@pytest.fixture(scope="session")
def reference_results():
    return grade_path(REFERENCE)

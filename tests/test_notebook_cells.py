"""The notebooks' own test cells, run top to bottom the way nbgrader autograde runs them.

Every code cell runs in order in one namespace with ``NBGRADER_EXECUTION=autograde``
(so the training demos skip themselves); test cells carry the source's code,
hidden regions included, as nbgrader's OverwriteCells restores it. With the
solutions every test cell passes, which also proves each check only needs names
defined ABOVE its cell; with the untouched release every test cell fails.
"""
import json
import os
import sys
import types

import pytest

from conftest import ROOT
from autograder.instructor.release import ASSIGNMENT

SOURCE = os.path.join(ROOT, "solutions", ASSIGNMENT)
RELEASE = os.path.join(ROOT, "assignments", ASSIGNMENT)
NOTEBOOKS = sorted(n for n in os.listdir(SOURCE) if n.endswith(".ipynb"))


def cells(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]


def is_test(cell):
    meta = cell["metadata"].get("nbgrader", {})
    return meta.get("grade") and not meta.get("solution")


def run_notebook(name, code_from):
    """Run the notebook's cells in order; returns {test cell id: exception or None}."""
    source_cells = {c["id"]: c for c in cells(SOURCE, name)}
    namespace = types.ModuleType(f"nb_{name[:2]}").__dict__
    outcome = {}
    for cell in cells(code_from, name):
        test = is_test(cell)
        code = "".join(source_cells[cell["id"]]["source"] if test else cell["source"])
        try:
            exec(compile(code, f"<{name}:{cell['id']}>", "exec"), namespace)
            error = None
        except Exception as exc:  # a demo cell after an untouched stub raises; only test cells are judged
            error = exc
        if test:
            outcome[cell["id"]] = error
    return outcome


@pytest.fixture
def kernel_like(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.chdir(SOURCE)
    # the public grader the test cells import: the release's committed copy (the one under solutions/ is a
    # git-ignored build product, absent from a fresh clone; tests/test_release.py proves the two are the same)
    monkeypatch.syspath_prepend(RELEASE)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_passes_every_test_cell_in_order(name, kernel_like, capsys):
    outcome = run_notebook(name, SOURCE)
    out = capsys.readouterr()
    assert outcome, f"{name} has no test cells"
    failed = {i: f"{type(e).__name__}: {e}" for i, e in outcome.items() if e is not None}
    assert not failed, failed
    assert out.err == "", out.err


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_untouched_release_fails_every_test_cell(name, kernel_like, capsys):
    outcome = run_notebook(name, RELEASE)
    out = capsys.readouterr()
    passed = [i for i, e in outcome.items() if e is None]
    assert not passed, passed
    assert all(isinstance(e, AssertionError) for e in outcome.values()), \
        {i: repr(e) for i, e in outcome.items() if not isinstance(e, AssertionError)}
    assert out.err == "", out.err

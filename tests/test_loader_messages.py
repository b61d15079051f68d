"""Where a load error happened, said the way a student finds it in Jupyter (which numbers no
cells): the notebook, the names the cell defines or its first line, and the line in the cell.
A file that is not a readable notebook is said to be one, never run, never a crashed worker."""
import json

import pytest
import torch

from autograder.core import runner
from autograder.core.student import InProcessStudent
from autograder.student_side import loader


def code(source, **meta):
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [],
            "source": source.splitlines(keepends=True)}


def write_notebook(path, cells):
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


TEST_CELL = {"nbgrader": {"grade": True, "solution": False, "grade_id": "t", "points": 1}}


@pytest.fixture
def broken(tmp_path):
    cells = [code("import torch\n"),
             code("check('a')\n", **TEST_CELL),          # nbgrader test cells: skipped, and counted by no one
             code("check('b')\n", **TEST_CELL),
             code("def helper():\n    return 1\n\n\ndef batch_norm(*args):\n    return 1 / 0\n"),
             code("# try it\nvalue = undefined_name + 1\n"),
             code("x = (1,\n"),
             code("class BatchNorm:\n    pass\n\nBatchNorm.missing\n")]
    return write_notebook(tmp_path / "01_batch_norm.ipynb", cells)


def test_load_errors_name_the_notebook_the_cell_and_the_line(broken):
    _, errors = loader.load_submission(str(broken))
    assert errors == [
        "01_batch_norm.ipynb, cell starting `# try it`, line 2: NameError: name 'undefined_name' is not defined",
        "01_batch_norm.ipynb, cell starting `x = (1,`, line 1: SyntaxError: '(' was never closed",
        "01_batch_norm.ipynb, cell defining BatchNorm, line 4: AttributeError: "
        "type object 'BatchNorm' has no attribute 'missing'",
    ]
    assert not any("code cell" in e for e in errors)


def test_an_error_inside_a_function_names_the_cell_that_defines_it(broken):
    student = InProcessStudent(str(broken))
    try:
        results, _ = runner.grade(student, runner.selected_checks(False, ["batch_norm.returns_triple"]))
    finally:
        student.close()
    message = results[0].message
    assert "ZeroDivisionError" in message and "01_batch_norm.ipynb, cell defining helper, batch_norm, line 6" in message


def test_cell_labels():
    assert loader.cell_label("n.ipynb", "import torch\nfrom torch import nn") == "n.ipynb, cell starting `import torch`"
    assert loader.cell_label("n.ipynb", "\n\nclass Residual(nn.Module):\n    def forward(self, X):\n") == \
        "n.ipynb, cell defining Residual"
    long = "QUIZ_ANSWERS = {'q1': 'A', 'q2': 'B', 'q3': 'C', 'q4': 'D'}"
    assert loader.cell_label("n.ipynb", long).endswith("...`") and len(loader.cell_label("n.ipynb", long)) < 70
    assert loader.cell_label("n.ipynb", "  \n") == "n.ipynb, an empty cell"


@pytest.mark.parametrize("damage, why", [
    (lambda nb: nb["cells"][1].update(source=["x = 1\n", 3]), "cell 2 of the file has a source that is not text"),
    (lambda nb: nb["cells"][1].update(source=17), "cell 2 of the file has a source that is not text"),
    (lambda nb: nb["cells"].append("just text"), "cell 3 of the file is not a cell"),
    (lambda nb: nb["cells"][0].update(metadata={"tags": "skip-grading"}), "cell 1 of the file has malformed metadata"),
    (lambda nb: nb.update(cells={"0": {}}), "it has no list of cells"),
])
def test_an_unreadable_notebook_is_said_to_be_one(tmp_path, damage, why):
    nb = {"cells": [code("import torch\n"), code("def batch_norm(*a):\n    return a\n")], "metadata": {},
          "nbformat": 4, "nbformat_minor": 5}
    damage(nb)
    path = write_notebook(tmp_path / "01_batch_norm.ipynb", nb["cells"])
    if not isinstance(nb["cells"], list):
        path.write_text(json.dumps(nb))
    names, errors = loader.load_submission(str(path))
    assert "batch_norm" not in names   # nothing of it ran
    assert errors == [f"01_batch_norm.ipynb: not a readable notebook ({why}); nothing in it was run. Open it in "
                      f"Jupyter and save it again, or start from a fresh copy of the assignment's notebook"]


def test_unreadable_notebook_reaches_the_students_report(tmp_path):
    """The worker's own path (Session -> load_submission) reports it; before, it died with a TypeError."""
    nb = {"cells": [code("import torch\n")], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nb["cells"][0]["source"] = ["import torch\n", 3.5]
    path = tmp_path / "01_batch_norm.ipynb"
    path.write_text(json.dumps(nb))
    (tmp_path / "broken_json.ipynb").write_text('{"cells": [')
    student = InProcessStudent(str(tmp_path))
    try:
        results, context = runner.grade(student, runner.selected_checks(False, ["batch_norm.returns_triple"]))
    finally:
        student.close()
    assert context["load_errors"][0].startswith("01_batch_norm.ipynb: not a readable notebook (cell 1 of the file")
    assert context["load_errors"][1].startswith("broken_json.ipynb: not a readable notebook (not valid JSON at line 1")
    assert "not a readable notebook" in results[0].message and "exit()" not in results[0].message


def test_an_error_raised_in_a_function_names_the_calling_cell_too(tmp_path):
    cells = [code("def batch_norm(*args):\n    raise NotImplementedError()\n"),
             code("import math\n\nY = batch_norm(1, 2)\n")]
    _, errors = loader.load_submission(str(write_notebook(tmp_path / "01_batch_norm.ipynb", cells)))
    assert errors == ["01_batch_norm.ipynb, cell starting `import math`, line 3, in batch_norm "
                      "(cell defining batch_norm, line 2): NotImplementedError: not implemented yet "
                      "(a stub still raises NotImplementedError)"]


def test_inspect_finds_the_source_of_a_loaded_file_and_cell(tmp_path):
    """torch.jit.script (and inspect.getsource) read a function's source: the loader registers each cell /
    file it runs, as IPython does, so a scripted module that works in Jupyter loads in the grader too."""
    source = ("import torch\nfrom torch import nn\n\n\nclass Twice(nn.Module):\n"
              "    def forward(self, x):\n        return x * 2\n\n\nscripted = torch.jit.script(Twice())\n")
    (tmp_path / "sub.py").write_text(source)
    write_notebook(tmp_path / "nb.ipynb", [code(source)])
    for path in (tmp_path / "sub.py", tmp_path / "nb.ipynb"):
        names, errors = loader.load_submission(str(path))
        assert errors == [], errors
        assert float(names["scripted"](torch.ones(1))) == 2.0

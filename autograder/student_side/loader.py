"""Load a submission into namespaces: a notebook, a folder of notebooks, or a .py file.

Notebook code cells run in order in a fresh module namespace, except cells the
grader must not run: cells tagged ``skip-grading`` (expensive demos such as the
LeNet training run) and nbgrader's autograder-test cells (they call the grader).
IPython magics (``%...``, ``!...``) are dropped. A cell that raises is recorded
and the next cell still runs, so one broken demo does not hide the rest.
"""
import json
import os
import sys
import types
import traceback

SKIP_TAG = "skip-grading"


def find_sources(path):
    """The files a submission path stands for, in grading order."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path)
                       if (n.endswith(".ipynb") or n.endswith(".py")) and not n.startswith((".", "_", "test_", "conftest")))
        notebooks = [n for n in names if n.endswith(".ipynb")]
        chosen = notebooks or names
        return [os.path.join(path, n) for n in chosen]
    return [path]


def notebook_cells(path):
    """(label, source) for each code cell the grader runs."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    cells = []
    number = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        number += 1
        meta = cell.get("metadata", {})
        grade = meta.get("nbgrader", {})
        if SKIP_TAG in meta.get("tags", []):
            continue
        if grade.get("grade") and not grade.get("solution"):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        cells.append((f"{os.path.basename(path)}, code cell {number}", strip_magics(source)))
    return cells


def strip_magics(source):
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def locate(exc, label):
    """Where in the student's code an exception happened: "01_batch_norm.ipynb, code cell 3, line 7"."""
    if isinstance(exc, SyntaxError):
        return f"{label}, line {exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith("<"):
            return f"{frame.filename.strip('<>')}, line {frame.lineno}"
    return label


def describe_error(exc, label):
    """One line a student can act on: where it happened and what it was."""
    if isinstance(exc, SyntaxError):
        return f"{locate(exc, label)}: SyntaxError: {exc.msg}"
    message = str(exc).strip() or "(no message)"
    return f"{locate(exc, label)}: {type(exc).__name__}: {message}"


def run_source(label, source, namespace):
    """Execute one cell or file; returns an error line or None."""
    try:
        code = compile(source, f"<{label}>", "exec")
        exec(code, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a submission may not end grading
        return describe_error(exc, label)
    return None


def load_submission(path):
    """Returns (names, errors).

    Each notebook or file runs in its own fresh module, as nbgrader runs each
    notebook in its own kernel; ``names`` maps every name a source defines to
    its value, later sources winning, so a piece is graded where it is defined.
    """
    names = {}
    errors = []
    for index, source_path in enumerate(find_sources(path)):
        module = types.ModuleType(f"submission_{index}")
        module.__file__ = f"<{os.path.basename(source_path)}>"
        sys.modules[module.__name__] = module
        namespace = module.__dict__
        if source_path.endswith(".ipynb"):
            try:
                cells = notebook_cells(source_path)
            except (OSError, ValueError) as exc:
                errors.append(f"{os.path.basename(source_path)}: not a readable notebook ({exc})")
                continue
        else:
            try:
                with open(source_path, encoding="utf-8") as f:
                    cells = [(os.path.basename(source_path), f.read())]
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{os.path.basename(source_path)}: cannot be read ({exc})")
                continue
        for label, source in cells:
            error = run_source(label, source, namespace)
            if error:
                errors.append(error)
        names.update({k: v for k, v in namespace.items() if not k.startswith("__")})
    return names, errors

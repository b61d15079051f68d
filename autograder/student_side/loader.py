"""Load a submission into namespaces: a notebook, a folder of notebooks, or a .py file.

Notebook code cells run in order in a fresh module namespace, except cells the
grader must not run: cells tagged ``skip-grading`` (expensive demos such as the
LeNet training run) and nbgrader's autograder-test cells (they call the grader).
IPython magics (``%...``, ``!...``) are dropped. A cell that raises is recorded
and the next cell still runs, so one broken demo does not hide the rest.

Errors are located the way a student finds the cell in Jupyter, which numbers no cells:
by notebook, by the names the cell defines (else its first line), and by the line in
the cell ("01_batch_norm.ipynb, cell defining batch_norm, line 7"). A file that is not
a notebook Jupyter could open (bad JSON, a cell source that is not text) is reported as
"not a readable notebook", never run.
"""
import json
import linecache
import os
import re
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


DEFINES = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.M)  # top-level defs only
FIRST_LINE_CHARS = 40


class UnreadableNotebook(ValueError):
    """The file is not a notebook the grader (or Jupyter) can read; ``str()`` says why."""


def read_notebook(path):
    """The notebook's cells, each checked to be what nbformat promises (a dict with a text source)."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UnreadableNotebook("it has no list of cells")
    for index, cell in enumerate(nb["cells"], 1):
        where = f"cell {index} of the file"
        if not isinstance(cell, dict):
            raise UnreadableNotebook(f"{where} is not a cell")
        source = cell.get("source", "")
        if not isinstance(source, str) and not (isinstance(source, list)
                                                and all(isinstance(line, str) for line in source)):
            raise UnreadableNotebook(f"{where} has a source that is not text")
        meta = cell.get("metadata", {})
        if not isinstance(meta, dict) or not isinstance(meta.get("tags", []), list) \
                or not isinstance(meta.get("nbgrader", {}), dict):
            raise UnreadableNotebook(f"{where} has malformed metadata")
    return nb["cells"]


def cell_label(notebook, source):
    """How a student finds a cell: "01_batch_norm.ipynb, cell defining batch_norm" or the first line."""
    names = DEFINES.findall(source)
    if names:
        return f"{notebook}, cell defining {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    if not first:
        return f"{notebook}, an empty cell"
    if len(first) > FIRST_LINE_CHARS:
        first = first[:FIRST_LINE_CHARS].rstrip() + "..."
    return f"{notebook}, cell starting `{first.replace('<', '(').replace('>', ')')}`"


def notebook_cells(path):
    """(label, source) for each code cell the grader runs; raises UnreadableNotebook / OSError."""
    cells = []
    for cell in read_notebook(path):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        grade = meta.get("nbgrader", {})
        if SKIP_TAG in meta.get("tags", []):
            continue
        if grade.get("grade") and not grade.get("solution"):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        cells.append((cell_label(os.path.basename(path), source), strip_magics(source)))
    return cells


def strip_magics(source):
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def student_frames(exc):
    """The traceback's frames in the student's cells or files (compiled as "<label>"), outermost first."""
    return [f for f in traceback.extract_tb(exc.__traceback__)
            if f.filename.startswith("<") and not f.filename.startswith("<frozen")]


def locate(exc, label):
    """Where in the student's code an exception happened: "01_batch_norm.ipynb, cell defining batch_norm, line 7".

    When it was raised deeper than the cell that ran (in a function defined elsewhere), both:
    "01_batch_norm.ipynb, cell starting `Y = batch_norm(...`, line 2, in batch_norm (cell defining
    batch_norm, line 11)"."""
    if isinstance(exc, SyntaxError):
        return f"{label}, line {exc.lineno}"
    frames = student_frames(exc)
    if not frames:
        return label
    outer, inner = frames[0], frames[-1]
    where = f"{outer.filename.strip('<>')}, line {outer.lineno}"
    if (inner.filename, inner.lineno) != (outer.filename, outer.lineno):
        notebook = outer.filename.strip("<>").split(", ", 1)[0] + ", "
        deeper = inner.filename.strip("<>")
        deeper = deeper[len(notebook):] if deeper.startswith(notebook) else deeper
        where += f", in {inner.name} ({deeper}, line {inner.lineno})"
    return where


def describe_error(exc, label):
    """One line a student can act on: where it happened and what it was."""
    if isinstance(exc, SyntaxError):
        return f"{locate(exc, label)}: SyntaxError: {exc.msg}"
    message = str(exc).strip()
    if not message and isinstance(exc, NotImplementedError):
        message = "not implemented yet (a stub still raises NotImplementedError)"
    return f"{locate(exc, label)}: {type(exc).__name__}: {message or '(no message)'}"


def run_source(label, source, namespace):
    """Execute one cell or file; returns an error line or None."""
    filename = f"<{label}>"
    # as IPython does for cells: inspect.getsource (torch.jit.script, dataclasses) finds the source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        code = compile(source, filename, "exec")
        exec(code, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a submission may not end grading
        return describe_error(exc, label)
    return None


def describe_unreadable(exc):
    if isinstance(exc, UnreadableNotebook):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON at line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc) or type(exc).__name__


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
            except (OSError, ValueError, RecursionError) as exc:
                errors.append(f"{os.path.basename(source_path)}: not a readable notebook ({describe_unreadable(exc)}); "
                              f"nothing in it was run. Open it in Jupyter and save it again, or start from a "
                              f"fresh copy of the assignment's notebook")
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

"""A temporary nbgrader course and the notebooks students hand in to it.

``make_course(root)`` copies the committed ``solutions/`` and ``nbgrader_config.py``
and links the instructor's ``autograder/`` beside them: the config makes the
temporary folder the course root, exactly as the repository root is one.

Submissions are built as a student would hand them in: the released notebooks
with each solution cell filled in. ``reference_notebooks()`` fills them with the
solution notebooks' code (markers dropped). ``variant_notebooks(v)`` starts from
the reference notebooks and replaces the solution cell that defines the
variant's piece with the variant's definitions of that cell's names (taken from
``tests/variants*.py``, whose sources are the reference ``.py`` with one mistake),
plus the variant's appended code (helpers, redefinitions, ``del``).
"""
import ast
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ASSIGNMENT = "bn_resnet_densenet"
SOURCE = os.path.join(ROOT, "solutions", ASSIGNMENT)
RELEASE = os.path.join(ROOT, "assignments", ASSIGNMENT)
IGNORED = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache", "*.pyc")
NAME_OF_PIECE = {"batch_norm": "batch_norm", "BatchNorm": "BatchNorm", "Residual": "Residual",
                 "DenseBlock": "DenseBlock", "transition_block": "transition_block", "quiz": "QUIZ_ANSWERS"}
MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def make_course(root):
    os.makedirs(root, exist_ok=True)
    shutil.copytree(os.path.join(ROOT, "solutions"), os.path.join(root, "solutions"),
                    ignore=shutil.ignore_patterns(*IGNORED))
    # the vendored public grader is a build product under solutions/ (git-ignored): make it, as build-release does
    from autograder.instructor import release
    checks = release.registered_checks()
    vendored = os.path.join(root, "solutions", ASSIGNMENT, release.VENDOR)
    release.vendor_public(vendored, release.hidden_ids(checks))
    release.write_point_totals(vendored, checks)
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), os.path.join(root, "nbgrader_config.py"))
    os.symlink(os.path.join(ROOT, "autograder"), os.path.join(root, "autograder"))
    return root


def nbgrader(root, *args, env=None, timeout=900):
    """``nbgrader ARGS`` from the course root, as docs/instructors.md writes it (the venv's nbgrader)."""
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    run_env = dict(os.environ if env is None else env)
    run_env.pop("PYTHONPATH", None)  # the config provides what the kernels need
    return subprocess.run([exe, *args], cwd=root, env=run_env, capture_output=True, text=True, timeout=timeout)


# ---- notebooks ------------------------------------------------------------------

def read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write(nb, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, ensure_ascii=False, indent=1)


def source_of(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_solution(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("solution", False)


def solution_code(cell):
    return "\n".join(line for line in source_of(cell).splitlines() if not MARKER.match(line))


def notebook_names():
    return sorted(n for n in os.listdir(RELEASE) if n.endswith(".ipynb"))


def untouched_notebooks():
    return {name: read(os.path.join(RELEASE, name)) for name in notebook_names()}


def reference_notebooks():
    """{name: notebook}: the release with every solution cell holding the solution's code."""
    notebooks = {}
    for name in notebook_names():
        solutions = {grade_id(c): solution_code(c) for c in read(os.path.join(SOURCE, name))["cells"] if is_solution(c)}
        nb = read(os.path.join(RELEASE, name))
        for cell in nb["cells"]:
            if is_solution(cell):
                cell["source"] = solutions[grade_id(cell)]
        notebooks[name] = nb
    return notebooks


def top_level_names(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def definitions(code, names):
    """The imports of ``code`` and the last top-level definition of each of ``names``, in that order."""
    tree = ast.parse(code)
    imports = [ast.get_source_segment(code, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    last = {}
    for node in tree.body:
        for name in top_level_names(node) & set(names):
            last[name] = ast.get_source_segment(code, node)
    missing = [n for n in names if n not in last]
    if missing:
        raise ValueError(f"the variant's code does not define {missing}")
    return imports, [last[n] for n in names]


def variant_notebooks(variant):
    """The reference notebooks with the variant's mistake in the solution cell of its piece."""
    from autograder.course import NOTEBOOK_OF_PIECE
    notebooks = reference_notebooks()
    nb = notebooks[NOTEBOOK_OF_PIECE[variant.piece]]
    target = NAME_OF_PIECE[variant.piece]
    for cell in nb["cells"]:
        if not is_solution(cell):
            continue
        names = list(dict.fromkeys(n for node in ast.parse(source_of(cell)).body for n in sorted(top_level_names(node))))
        if target not in names:
            continue
        code = variant.source()
        base = code[: len(code) - len("\n\n" + variant.append)] if variant.append else code
        imports, defs = definitions(base, names)
        cell["source"] = "\n".join(imports) + "\n\n\n" + "\n\n\n".join(defs) + \
            ("\n\n\n" + variant.append if variant.append else "")
        return notebooks
    raise ValueError(f"no solution cell defines {target}")


def submit(root, student, notebooks, extra_files=None):
    """Place a student's notebooks where nbgrader autograde looks for them (see docs/instructors.md)."""
    folder = os.path.join(root, "gradebook", "submitted", student, ASSIGNMENT)
    for name, nb in notebooks.items():
        write(nb, os.path.join(folder, name))
    for rel, text in (extra_files or {}).items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return folder

"""The layout is the architecture: rules that keep it readable, checked on the source.

- no import circle between the package's modules (imports inside functions count);
- ``student_side/`` imports nothing of the grader outside itself (the sandbox copies only it);
- ``core/`` and ``reference/`` never import the doors (``instructor/``, ``notebook``, ``pytest_plugin``);
- nothing outside ``instructor/`` imports ``instructor/`` (it is never vendored to students);
- at most 8 modules at the top of ``autograder/``; no module over 400 lines;
- every ``BNLAB_*`` setting is read in ``course.py`` only.
"""
import ast
import os
import re

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "autograder")


def modules():
    """{dotted module name: path} of every module of the package."""
    found = {}
    for folder, dirs, names in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return found


def resolve(module, node, known):
    """The package modules an import node names (relative imports resolved), as dotted names."""
    is_package = known[module].endswith("__init__.py")
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    else:
        base = module.split(".")
        if node.level:
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        targets = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
    out = set()
    for t in targets:
        while t and t not in known:
            t = t.rpartition(".")[0]
        if t and t != module:
            out.add(t)
    return out


def import_graph():
    known = modules()
    graph = {}
    for module, path in known.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        graph[module] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[module] |= resolve(module, node, known)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_circle_detector_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("source_layer, forbidden", [
    ("student_side", {"core", "reference", "checks", "hidden", "instructor", "course", "notebook", "pytest_plugin",
                      "sandbox"}),
    ("core", {"instructor", "notebook", "pytest_plugin", "checks", "hidden"}),
    ("reference", {"instructor", "notebook", "pytest_plugin", "checks", "hidden"}),
    ("checks", {"instructor", "hidden", "notebook", "pytest_plugin"}),
])
def test_layers_import_only_downwards(source_layer, forbidden):
    bad = [(m, t) for m, targets in import_graph().items() if layer(m) == source_layer
           for t in targets if layer(t) in forbidden]
    assert bad == []


def test_only_instructor_code_imports_instructor_code():
    bad = [(m, t) for m, targets in import_graph().items() if layer(m) != "instructor" and m != "autograder.__main__"
           for t in targets if layer(t) == "instructor"]
    assert bad == []


def test_few_modules_at_the_top():
    top = [n for n in os.listdir(PACKAGE) if n.endswith(".py")]
    assert len(top) <= 8, top


def test_no_module_over_400_lines():
    long = {}
    for module, path in modules().items():
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > 400:
            long[module] = n
    assert long == {}


def test_settings_are_read_in_course_only():
    readers = []
    for module, path in modules().items():
        if module == "autograder.course":
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"os\.environ(?:\.get)?\(?\[?\s*[\"'](BNLAB_[A-Z_]+)", text):
            readers.append((module, m.group(1)))
    # the worker's private hand-over variables (set by the sandbox for one process) are not settings
    readers = [(m, v) for m, v in readers if v not in ("BNLAB_REQ_FD", "BNLAB_RESP_FD", "BNLAB_SUBMISSION")]
    assert readers == []


@pytest.mark.xdist_group("xdist_self_check")
def test_xdist_groups_are_honoured(request):
    """scripts/test.sh runs `--dist loadgroup`: a module whose expensive fixtures are built once relies on
    its xdist_group keeping its tests in one test process. pytest-xdist marks a grouped test by
    appending "@group" to its node id; when a pytest release changes how node ids are stored, the
    group is silently dropped and those fixtures are built once per process (pyproject.toml pins
    pytest below 9.2 for this)."""
    if not getattr(request.config.option, "loadgroup", False):   # set by pytest-xdist, in its workers only
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@xdist_self_check"), request.node.nodeid

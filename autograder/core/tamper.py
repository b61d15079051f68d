"""Source scan: does a submission reach for the grader's internals or an escape hatch?

Some checks decide points on what the worker OBSERVES inside the student's process
(which of PyTorch's normalisation kernels ran, which layers ran, how training went,
the shapes of whole networks). Code in that process can rewrite such observations,
so the grader also reads the submission's source, in ITS OWN process, before it
trusts them. ``scan(path)`` parses every code cell / file the loader would run
(``student_side.loader``; notebook cells skipped by the loader are not run and not
scanned), plus every ``.py`` file of the submission's folder that one of them imports
(transitively), with ``ast``, and returns a ``Finding`` for each use of:

- the grader's modules: an import of, or a name / attribute / module-path string
  naming, ``student_side``, ``probes``, ``train_probe``, ``session``, ``worker``,
  ``wire``, ``loader``, ``autograder``, ``bnlab_public`` ... (``GRADER_MODULES``);
- the interpreter's back doors: ``sys.modules``, ``gc``, frame and code objects
  (``sys._getframe``, ``inspect.currentframe`` / ``stack``, ``f_back``, ``f_globals``,
  ``tb_frame``, ``__globals__``, ``__code__``, ``__closure__``, ``__subclasses__``),
  ``sys.settrace`` / ``setprofile``, ``ctypes`` / ``cffi``, ``/proc/...`` paths;
- PyTorch's dispatch machinery: ``torch._C``, ``torch.utils._python_dispatch``, any
  name containing ``dispatch`` or ``torch_function``, ``TorchDispatchMode``,
  ``TorchFunctionMode``, ``_disable_current_modes``, ``_pop_mode`` ...;
- code built at run time: ``exec`` / ``eval`` / ``compile`` / ``__import__`` /
  ``importlib.import_module`` (and friends) with an argument that is not a string
  literal (a literal is parsed and scanned like the rest), ``getattr`` / ``setattr`` /
  ``delattr`` with a computed name on an imported module;
- rebinding what other code relies on: ``builtins`` / ``__builtins__``, ``setattr``
  on an imported module, or ``module.attr = ...`` / ``del module.attr`` through a name
  bound by an ``import`` (``torch.Tensor.__eq__ = ...``, ``nn.Sequential.__init__ = ...``),
  except settings meant to be set (``torch.backends.*``, ``rcParams``, ``pandas.options``).

A submission with any finding scores zero on every observation-based check
(``runner.grade``; see docs/security.md, "Evidence"). No honest submission of the
catalogue is flagged (``tests/test_tamper.py``). The scan never runs the code and
never trusts the worker; a file that does not parse is skipped (loading reports it).
"""
import ast
import dataclasses
import os

from ..student_side.loader import find_sources, notebook_cells
from .tamper_rules import (GRADER_MODULES, GRADER_NAMES, FORBIDDEN_MODULES, ALWAYS_FRAME_ATTRS, OWNED_ATTRS,
                           FRAME_ATTRS, DISPATCH_NAMES, SUBCLASS_PROTOCOL, DISPATCH_PATTERN, BUILTIN_CODE_CALLS,
                           DYNAMIC_CALLS, LOADER_CALLS, ATTRIBUTE_CALLS, FD_CALLS, WRITE_MODE, MODULE_PATH,
                           SETTINGS, MAX_FILES, STUDENT_CHECK_IMPORT, CODE_SUFFIXES)


@dataclasses.dataclass(frozen=True)
class Finding:
    where: str     # "01_batch_norm.ipynb, code cell 3, line 7"
    what: str      # "refers to the grader's module `student_side`"

    def __str__(self):
        return f"{self.where}: {self.what}"

    def as_dict(self):
        return {"where": self.where, "what": self.what}


def dotted(node):
    """'a.b.c' for Name/Attribute chains, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def root_name(node):
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


class Scanner(ast.NodeVisitor):
    def __init__(self, label, add, imports):
        self.label, self.add, self.imports = label, add, imports
        self.bound = {}       # name bound by an import -> the module path it stands for
        self.called = set()   # id() of the `func` node of every call seen (exec(...) vs e = exec)

    # ---- helpers
    def flag(self, node, what):
        self.add(Finding(f"{self.label}, line {getattr(node, 'lineno', '?')}", what))

    def module_path(self, node, name):
        """Flag an imported module path; returns nothing."""
        top = name.split(".")[0]
        if top in GRADER_MODULES:
            self.flag(node, f"imports the grader's module `{name}`")
        for bad, why in FORBIDDEN_MODULES.items():
            if name == bad or name.startswith(bad + "."):
                self.flag(node, f"imports {why}")
                break
        if top == "builtins":
            self.flag(node, "imports `builtins` (rebinding built-in functions changes the grader's code too)")
        self.imports.add(top)

    def name_use(self, node, name):
        if name in GRADER_NAMES:
            self.flag(node, f"refers to the grader's `{name}`")
        elif name in DISPATCH_NAMES or (DISPATCH_PATTERN.search(name) and name not in SUBCLASS_PROTOCOL):
            self.flag(node, f"uses PyTorch's dispatch machinery (`{name}`)")
        elif name in ALWAYS_FRAME_ATTRS:
            self.flag(node, f"uses interpreter internals (`{name}`: frames, code objects, globals)")
        elif name == "__builtins__":
            self.flag(node, "uses `__builtins__`")

    def literal_code(self, node, arg):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            try:
                tree = ast.parse(arg.value)
            except (SyntaxError, ValueError):
                return
            inner = Scanner(f"{self.label}, line {node.lineno} (code in a string)", self.add, self.imports)
            inner.bound = dict(self.bound)
            inner.visit(tree)

    # ---- imports
    def visit_Import(self, node):
        for alias in node.names:
            self.module_path(node, alias.name)
            self.bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                alias.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if (node.module, [a.name for a in node.names], node.level) == STUDENT_CHECK_IMPORT:
            self.bound.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
            return          # the notebooks' own test-cell idiom, copied into a student's cell to try a check
        if node.level:
            self.flag(node, "uses a relative import (a submission is not a package: it would reach the grader's)")
        module = node.module or ""
        if module:
            self.module_path(node, module)
        for alias in node.names:
            if alias.name == "*" and module.split(".")[0] in set(OWNED_ATTRS) | {"builtins", "gc", "ctypes"}:
                self.flag(node, f"imports everything from `{module}` (its internals under bare names)")
            if module:
                self.module_path(node, f"{module}.{alias.name}")
            self.name_use(node, alias.name)
            if alias.name in OWNED_ATTRS.get(module.split(".")[0], ()):
                self.flag(node, f"imports `{module}.{alias.name}` (interpreter internals)")
            self.bound[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name
        self.generic_visit(node)

    # ---- aliases: `m = torch`, `f = torch.nn.functional` stand for the module as an import would
    def alias(self, targets, value):
        if isinstance(value, (ast.Name, ast.Attribute)) and root_name(value) in self.bound:
            real = self.resolve(value)
            for target in targets:
                if isinstance(target, ast.Name) and real:
                    self.bound[target.id] = real

    def visit_Assign(self, node):
        self.generic_visit(node)
        self.alias(node.targets, node.value)

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        if node.value is not None:
            self.alias([node.target], node.value)

    def visit_NamedExpr(self, node):
        self.generic_visit(node)
        self.alias([node.target], node.value)

    # ---- names and attributes
    def resolve(self, node):
        """The module path an expression stands for: `sys`, `s.modules` with `import sys as s`,
        `__import__('sys')`, `importlib.import_module('sys').x`; None when unknown."""
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and \
                isinstance(node.args[0].value, str) and \
                (getattr(node.func, "id", None) == "__import__" or getattr(node.func, "attr", None) == "import_module"):
            return node.args[0].value
        if isinstance(node, ast.Attribute):
            owner = self.resolve(node.value)
            return f"{owner}.{node.attr}" if owner else None
        if isinstance(node, ast.Name):
            return self.bound.get(node.id, node.id)
        return None

    def visit_Name(self, node):
        self.name_use(node, node.id)
        if node.id in BUILTIN_CODE_CALLS and id(node) not in self.called:
            self.flag(node, f"passes `{node.id}` around instead of calling it (code chosen at run time)")
        if node.id in ATTRIBUTE_CALLS - {"hasattr"} and id(node) not in self.called and isinstance(node.ctx, ast.Load):
            self.flag(node, f"passes `{node.id}` around instead of calling it (attributes chosen at run time)")
        if node.id == "builtins" and isinstance(node.ctx, ast.Store):
            self.flag(node, "rebinds `builtins`")

    def visit_Attribute(self, node):
        self.name_use(node, node.attr)
        if node.attr in LOADER_CALLS and id(node) not in self.called:
            self.flag(node, f"passes `{node.attr}` around instead of calling it (modules chosen at run time)")
        real = self.resolve(node.value)
        if real is not None and node.attr in OWNED_ATTRS.get(real.split(".")[0], ()):
            self.flag(node, f"uses `{real}.{node.attr}` (interpreter internals: modules, frames, tracing)")
        if real is not None and isinstance(node.value, ast.Attribute) and node.value.attr in OWNED_ATTRS and \
                node.attr in OWNED_ATTRS[node.value.attr]:
            self.flag(node, f"uses `{node.value.attr}.{node.attr}` reached through `{real}` (interpreter internals)")
        if real is not None and f"{real}.{node.attr}" in FORBIDDEN_MODULES:
            self.flag(node, f"uses {FORBIDDEN_MODULES[real + '.' + node.attr]}")
        if node.attr == "__dict__" and root_name(node) in self.bound:
            self.flag(node, f"reads `{dotted(node) or '__dict__'}` of an imported name")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.rebinding(node)
        self.generic_visit(node)

    def rebinding(self, node):
        path = dotted(node)
        root = root_name(node)
        if root is None or root not in self.bound:
            return
        real = self.bound[root] + path[len(root):] if path else self.bound[root]
        if any(path and (path + ".").startswith(s) or real.startswith(s) for s in SETTINGS):
            return
        self.flag(node, f"rebinds `{path or real}`, an attribute of the imported `{self.bound[root]}` "
                        f"(patching a library changes the grader's code in your process too)")

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, str) and len(value) < 200:
            if MODULE_PATH.match(value) and set(value.split(".")) & (GRADER_NAMES | {"probes", "NormOpWatch"}):
                self.flag(node, f"names the grader's module `{value}`")
            elif MODULE_PATH.match(value) and (value in DISPATCH_NAMES or value in ALWAYS_FRAME_ATTRS
                                               or value == "__builtins__"
                                               or any(value == m or value.startswith(m + ".")
                                                      for m in FORBIDDEN_MODULES)):
                self.flag(node, f"names `{value}` in a string (a computed route to interpreter internals)")
            elif value.startswith(("/dev/fd", "/dev/std")):
                self.flag(node, f"opens `{value[:40]}` (raw file descriptors: the worker's answer channel)")
            elif value.startswith("/proc/"):
                self.flag(node, f"opens `{value[:40]}` (the process's own memory and descriptors)")

    # ---- calls
    def visit_Call(self, node):
        self.called.add(id(node.func))
        name = node.func.id if isinstance(node.func, ast.Name) else \
            node.func.attr if isinstance(node.func, ast.Attribute) else None
        args = node.args
        if name in BUILTIN_CODE_CALLS and isinstance(node.func, ast.Attribute) and \
                self.bound.get(root_name(node.func), "") not in ("builtins", "__builtins__"):
            name = None       # model.eval(), torch.compile(...): methods, not the built-ins
        if name in DYNAMIC_CALLS:
            first = args[0] if args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, (str, bytes))):
                self.flag(node, f"calls `{name}` on a computed value (code or modules chosen at run time)")
            elif name in ("exec", "eval", "compile"):
                self.literal_code(node, first)
            elif name in ("__import__", "import_module"):
                self.module_path(node, first.value if isinstance(first.value, str) else "")
        if name in ATTRIBUTE_CALLS and isinstance(node.func, ast.Name) and args:
            target = root_name(args[0])
            if len(args) > 1 and not (isinstance(args[1], ast.Constant) and isinstance(args[1].value, str)):
                if target in self.bound or target in ("__builtins__", "builtins"):
                    self.flag(node, f"calls `{name}` with a computed attribute name on `{dotted(args[0])}`")
            elif len(args) > 1:
                attr = args[1].value
                fake = ast.Attribute(value=args[0], attr=attr, ctx=ast.Load(), lineno=node.lineno)
                self.name_use(node, attr)
                owner = self.resolve(args[0])
                if owner and attr in OWNED_ATTRS.get(owner.split(".")[0], ()):
                    self.flag(node, f"uses `{owner}.{attr}` (interpreter internals)")
                if name in ("setattr", "delattr"):
                    self.rebinding(fake)
        if name in ("open", "Path", "write_text", "write_bytes", "copy", "copyfile", "rename", "replace") and any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.endswith(CODE_SUFFIXES)
                for a in args):
            self.flag(node, "writes or opens a code file at run time (code the grader cannot read beforehand)")
        if name in ("attrgetter", "methodcaller", "__getattribute__", "__getattr__") and any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) and
                (set(a.value.split(".")) & FRAME_ATTRS or a.value in GRADER_NAMES) for a in args):
            self.flag(node, f"reaches interpreter internals through `{name}`")
        elif name in ("attrgetter", "methodcaller", "__getattribute__") and args and not all(
                isinstance(a, ast.Constant) and isinstance(a.value, str)
                for a in (args[1:] if name == "__getattribute__" and len(args) > 1 else args[:1] if
                          name == "methodcaller" else args)):
            self.flag(node, f"calls `{name}` with a computed attribute name (attributes chosen at run time)")
        if name == "vars" and isinstance(node.func, ast.Name) and args and root_name(args[0]) in self.bound:
            self.flag(node, f"reads `vars()` of the imported `{dotted(args[0])}`")
        owner = self.resolve(node.func.value) if isinstance(node.func, ast.Attribute) else None
        if name in FD_CALLS and owner in ("os", "posix", "socket", "pty"):
            self.flag(node, f"calls `{owner}.{name}` (raw file descriptors: the worker's answer channel)")
        if name in ("open", "FileIO", "fdopen") and args and not isinstance(args[0], ast.Constant):
            # a text file written under a computed name is honest (results_{lr}.txt); bytes to a computed
            # path or descriptor, closefd, a computed mode or FileIO / fdopen are how a frame gets written
            mode = args[1] if len(args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            binary_write = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and \
                WRITE_MODE.search(mode.value) and "b" in mode.value
            if name != "open" or binary_write or any(k.arg == "closefd" for k in node.keywords) or \
                    (mode is not None and not isinstance(mode, ast.Constant)):
                self.flag(node, f"opens a computed path or descriptor for writing bytes (`{name}`: the worker's "
                                f"answer channel is a descriptor)")
        if name == "write_bytes" and isinstance(node.func, ast.Attribute) and \
                not (isinstance(node.func.value, ast.Call) and node.func.value.args and
                     isinstance(node.func.value.args[0], ast.Constant)):
            self.flag(node, f"writes to a computed path (`{name}`)")
        if any(k.arg == "pass_fds" for k in node.keywords):
            self.flag(node, "passes file descriptors to a child process (`pass_fds`)")
        if name == "getmembers" and args and root_name(args[0]) in self.bound:
            self.flag(node, f"reads every member of the imported `{dotted(args[0])}` (attributes chosen at run time)")
        self.generic_visit(node)


def scan_source(label, source, imports=None):
    """Findings in one cell or file (a source that does not parse has none: loading reports it)."""
    found = []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return found
    Scanner(label, found.append, imports if imports is not None else set()).visit(tree)
    return found


def sources(path):
    """(label, source) for each cell / file the loader runs."""
    for source_path in find_sources(path):
        try:
            if source_path.endswith(".ipynb"):
                yield from notebook_cells(source_path)
            else:
                with open(source_path, encoding="utf-8") as f:
                    yield os.path.basename(source_path), f.read()
        except (OSError, ValueError, TypeError, AttributeError):
            continue


def scan(path):
    """Findings for a submission (a notebook, a folder, or a .py file), in source order, without repeats."""
    findings, imports = [], set()
    for label, source in sources(path):
        findings += scan_source(label, source, imports)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    done = {os.path.basename(p) for p in find_sources(path)}
    pending = sorted(imports)
    while pending and len(done) < MAX_FILES:
        name = pending.pop()
        for candidate in (os.path.join(folder, name + ".py"), os.path.join(folder, name, "__init__.py")):
            rel = os.path.relpath(candidate, folder)
            if rel in done or not os.path.isfile(candidate):
                continue
            done.add(rel)
            try:
                with open(candidate, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            more = set()
            findings += scan_source(rel, text, more)
            pending += sorted(more - imports)
            imports |= more
    unique = list(dict.fromkeys(findings))
    return unique


def summary(findings, limit=8):
    """One paragraph for the report: why and where."""
    shown = "; ".join(str(f) for f in findings[:limit])
    more = f"; and {len(findings) - limit} more" if len(findings) > limit else ""
    return (f"your submission reaches for the grader's internals or an escape hatch ({shown}{more}). Checks that "
            f"rely on what the grader observes inside your process score zero; remove that code to have them graded")

"""The source scan (autograder/tamper.py): what it flags, that no honest submission is ever flagged, and what a
flag does to the grade (zero on observation-based checks only), the report, grades.csv and the class summary.

Fast: in-process grading of a few checks; the sandboxed attacks themselves are in tests/test_hostile.py."""
import glob
import importlib
import json
import os
import pkgutil

import pytest

from autograder.core import report, runner, tamper
from autograder.instructor import batch, class_summary as insight
from autograder.core.student import InProcessStudent, observation_kinds
from conftest import REFERENCE, ROOT

pytestmark = pytest.mark.xdist_group("test_tamper")   # its module fixtures are built once, in one test process

HERE = os.path.dirname(os.path.abspath(__file__))


def flags(source):
    return [f.what for f in tamper.scan_source("cell", source)]


# ---- no honest variant of the catalogue, ever --------------------------------------------------------

def honest_variants():
    import test_training
    modules = [importlib.import_module(m.name) for m in pkgutil.iter_modules([HERE]) if m.name.startswith("variants_")]
    found = [v for m in modules for v in m.WRONG + m.RIGHT]
    return found + list(test_training.WRONG) + [test_training.RIGHT_BUFFERS_INPLACE]


def test_no_honest_submission_is_flagged(tmp_path):
    variants = honest_variants()
    assert len(variants) >= 60
    flagged = {v.id: tamper.scan(v.write(str(tmp_path))) for v in variants}
    assert not {k: v for k, v in flagged.items() if v}
    solutions = os.path.join(ROOT, "solutions", "bn_resnet_densenet")
    paths = [REFERENCE, os.path.join(HERE, "submissions", "stub.py"), solutions,
             os.path.join(ROOT, "assignments", "bn_resnet_densenet")]
    paths += sorted(glob.glob(os.path.join(solutions, "*.ipynb")))
    for path in paths:
        if os.path.exists(path):
            assert tamper.scan(path) == [], path


# ---- what is flagged: each kind, and the honest idiom next to it -------------------------------------------

@pytest.mark.parametrize("source, needle", [
    ("import student_side.probes", "grader's module"),
    ("from autograder.student_side import train_probe", "grader's module"),
    ("import bnlab_public", "grader's module"),
    ("from probes import forward", "grader's module"),
    ("import sys\nm = sys.modules['x']", "sys.modules"),
    ("import sys as s\nfor k in s.modules: pass", "sys.modules"),
    ("from sys import modules", "interpreter internals"),
    ("import gc\ngc.get_objects()", "garbage collector"),
    ("import sys\nf = sys._getframe(1)", "interpreter internals"),
    ("import inspect\nf = inspect.currentframe().f_back.f_globals", "interpreter internals"),
    ("def f():\n    return f.__globals__", "interpreter internals"),
    ("try:\n    1/0\nexcept Exception as e:\n    e.__traceback__.tb_frame", "interpreter internals"),
    ("import torch\ng = torch.utils._python_dispatch", "dispatch"),
    ("from torch.utils._python_dispatch import TorchDispatchMode", "dispatch modes"),
    ("from torch.overrides import TorchFunctionMode", "function modes"),
    ("import torch\nwith torch._C.DisableTorchFunction(): pass", "dispatch"),
    ("import torch\nwith torch._C._DisableTorchDispatch(): pass", "dispatch"),
    ("from torch.utils._python_dispatch import _pop_mode_temporarily as p", "dispatch"),
    ("import ctypes", "ctypes"),
    ("name = 'o' + 's'\nm = __import__(name)", "computed value"),
    ("import importlib\nm = importlib.import_module('student_' + 'side')", "computed value"),
    ("code = 'x = 1'\nexec(code)", "computed value"),
    ("exec('import gc')", "garbage collector"),
    ("eval(compile(s, 'f', 'exec'))", "computed value"),
    ("import builtins\nbuiltins.abs = lambda x: 0", "builtins"),
    ("__builtins__['abs'] = None", "__builtins__"),
    ("import torch\nsetattr(torch.nn.functional, 'batch_norm', lambda *a: a[0])", "rebinds"),
    ("import torch\ntorch.nn.functional.batch_norm = None", "rebinds"),
    ("from torch import nn\nnn.Sequential.__init__ = None", "rebinds"),
    ("import torch\ngetattr(torch, 'x' + 'y')", "computed attribute name"),
    ("import sys\ngetattr(sys, 'modules')", "interpreter internals"),
    ("open('/proc/self/mem', 'rb')", "/proc/"),
    ("x = 'student_side.probes'", "grader's module"),
    ("from . import probes", "relative import"),
    ("import torch\ntorch.library.Library('aten', 'IMPL')", "operator registration"),
    ("import traceback\nfor f, _ in traceback.walk_stack(None): pass", "interpreter internals"),
    ("from torch import nn\ntype.__setattr__(nn.Module, '__call__', None)", "interpreter internals"),
    ("import sys\nd = sys.__dict__", "__dict__"),
    ("import signal\nsignal.signal(signal.SIGALRM, print)", "signal handlers"),
    ("import sys\nsys.meta_path.insert(0, object())", "sys.meta_path"),
    ("open('helper.py', 'w').write('import gc')", "code file"),
    ("m = getattr(__import__('sys'), 'modules')", "sys.modules"),
    ("m = __import__('sys').modules", "sys.modules"),
    ("from sys import *\nm = modules", "imports everything"),
    ("run = exec\nrun('import gc')", "instead of calling it"),
    ("import importlib\nload = importlib.import_module\nload('gc')", "instead of calling it"),
    ("import torch as t\nlib = t.library", "operator registration"),
    ("import operator, sys\nm = operator.attrgetter('modules')(sys)", "through `attrgetter`"),
    ("import sys\nm = object.__getattribute__(sys, 'modules')", "through `__getattribute__`"),
    # routes found by breaking the grader (branch break): an alias of an imported module, getattr as a value,
    # computed names through attrgetter / __getattribute__ / getmembers, sys.modules through another module
    ("import torch\nm = torch\nC = getattr(m, '_' + 'C')", "computed attribute name on `m`"),
    ("from torch.nn import functional as F\nf: object = F\nbn = getattr(f, 'batch_' + 'norm')", "computed attribute"),
    ("import torch, functools\nC = functools.reduce(getattr, ['_' + 'C'], torch)", "passes `getattr` around"),
    ("import torch, operator\nC = operator.attrgetter('_' + 'C')(torch)", "`attrgetter` with a computed"),
    ("import torch\nC = object.__getattribute__(torch, '_' + 'C')", "`__getattribute__` with a computed"),
    ("import torch, inspect\nC = dict(inspect.getmembers(torch))['_' + 'C']", "every member"),
    ("import torch\nm = torch.nn.modules.module.sys.modules", "sys.modules"),
    # the worker's answer channel is an inherited pipe: raw descriptors (tests/hostile/forged_pipe.py)
    ("import os\nos.write(5, b'frame')", "raw file descriptors"),
    ("import os\nos.dup2(3, 4)", "raw file descriptors"),
    ("import fcntl", "raw file descriptors"),
    ("for fd in range(3, 9):\n    open(fd, 'wb', closefd=False).write(b'x')", "for writing"),
    ("for fd in range(3, 9):\n    open(fd, 'ab').write(b'x')", "for writing bytes"),
    ("import pathlib\np = '/dev/' + 'fd/5'\npathlib.Path(p).write_bytes(b'x')", "computed path"),
    ("open('/dev/fd/5', 'wb')", "raw file descriptors"),
    ("import subprocess\nsubprocess.Popen(['cat'], pass_fds=[5])", "pass_fds"),
])
def test_each_kind_is_flagged(source, needle):
    found = flags(source)
    assert any(needle in w for w in found), (source, found)


@pytest.mark.parametrize("source", [
    "import torch\nfrom torch import nn\nnet = nn.Sequential(nn.Linear(2, 2))\nnet.eval()\nnet.train()",
    "import torch\nmodel = torch.compile(lambda x: x)",
    "import torch\ntorch.backends.cudnn.benchmark = False\ntorch.backends.cudnn.deterministic = True",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (3, 2)",
    "loader = [1, 2]\nsession = None\nfor batch in loader: pass",
    "import torch\nx = torch.ones(2)\nx.data = torch.zeros(2)\nprint(x.__class__.__name__)",
    "class B:\n    def __init__(self):\n        self.mode = 'train'\n        self.eval_mode = False",
    "import torch\nclass T(torch.Tensor):\n    def __torch_function__(self, func, types, args=(), kwargs=None):\n"
    "        return super().__torch_function__(func, types, args, kwargs)",
    "print('run the autograder: python -m autograder grade nb.ipynb')",
    "import inspect\nsig = inspect.signature(print)",
    "import numpy as np\nnp.random.seed(0)\nimport torch\ntorch.manual_seed(0)",
    "exec('x = 1')",
    "import importlib\nm = importlib.import_module('math')",
    "def f(net):\n    for m in net.modules():\n        pass",
    "import torch\ny = torch.stack([torch.ones(2)])\nz = torch.cat([y, y])",
    "import traceback\ntry:\n    pass\nexcept Exception:\n    traceback.print_exc()",
    "from bnlab_public.notebook import check\ncheck('batch_norm.returns_triple')",   # the test cells' idiom
    "import torch\nfrom torch import nn\nact = nn.ReLU\nF = torch.nn.functional\ny = F.relu(torch.ones(1))\n"
    "layer = act()\nname = 'weight'\nw = getattr(layer, name, None)",   # aliases, getattr on an instance
    "import operator\nkey = operator.attrgetter('score')\nnames = sorted([], key=key)",
    "import os\npath = os.path.join('data', 'x.txt')\nwith open(path) as f:\n    text = f.read()\n"
    "with open('notes.txt', 'w') as f:\n    f.write(text)\nos.makedirs('out', exist_ok=True)\n"
    "for lr in (0.1, 1.0):\n    with open(f'results_{lr}.txt', 'w') as f:\n        f.write(str(lr))\n"
    "import pathlib\npathlib.Path(f'log_{lr}.txt').write_text('ok')",
])
def test_honest_idioms_are_not_flagged(source):
    assert flags(source) == []


def test_a_local_module_the_submission_imports_is_scanned(tmp_path):
    (tmp_path / "helper.py").write_text("import gc\n")
    (tmp_path / "unused.py").write_text("import ctypes\n")
    (tmp_path / "main.py").write_text("import helper\n")
    found = tamper.scan(str(tmp_path / "main.py"))
    assert [f.where for f in found] == ["helper.py, line 1"]


def test_notebook_findings_name_the_cell_and_line(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["import torch\n"]},
                    {"cell_type": "markdown", "metadata": {}, "source": ["import gc"]},
                    {"cell_type": "code", "metadata": {}, "source": ["x = 1\n", "import sys\n", "sys.modules\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "01_batch_norm.ipynb"
    path.write_text(json.dumps(nb))
    found = tamper.scan(str(path))
    assert found and found[0].where == "01_batch_norm.ipynb, cell starting `x = 1`, line 3"


# ---- which checks are observation-based: decided from the probe requests -----------------------------------

def test_observation_kinds_come_from_the_request():
    assert observation_kinds("call", {"name": "batch_norm", "watch_norm_ops": True})
    assert observation_kinds("module", {"ops": [{"op": "train"}, {"op": "forward", "trace": True}]})
    assert observation_kinds("train", {}) and observation_kinds("architecture", {"arch": "resnet18"})
    assert not observation_kinds("call", {"name": "batch_norm", "watch_norm_ops": False})
    assert not observation_kinds("module", {"ops": [{"op": "forward", "trace": False}]})
    assert not observation_kinds("quiz", {})


@pytest.fixture(scope="module")
def flagged_grades(tmp_path_factory):
    """The reference plus one line that touches sys.modules, graded in-process on a few checks."""
    folder = tmp_path_factory.mktemp("flagged")
    path = folder / "alice.py"
    path.write_text(open(REFERENCE).read() + "\n\nimport sys\n_ = len(sys.modules)\n")
    checks = runner.selected_checks(True, ["batch_norm.train_stats_2d", "batch_norm.from_scratch",
                                           "BatchNorm.from_scratch", "quiz.answers_well_formed"])
    student = InProcessStudent(str(path))
    try:
        results, context = runner.grade(student, checks)
    finally:
        student.close()
    return {r.id: r for r in results}, context


def test_a_flag_zeroes_observation_checks_only(flagged_grades):
    results, context = flagged_grades
    assert context["tampering"] and all(f.where.startswith("alice.py, line ") for f in context["tampering"])
    for i in ("batch_norm.from_scratch", "BatchNorm.from_scratch"):
        assert results[i].score == 0 and "scored zero: this check relies on the normalisation-kernel watch" \
            in results[i].message and "sys.modules" in results[i].message
        assert "Graded as if not flagged: passed" in results[i].message
    assert results["batch_norm.train_stats_2d"].passed and results["quiz.answers_well_formed"].passed


def test_the_flag_reaches_results_json_grades_csv_and_the_summary(flagged_grades, tmp_path):
    results, context = flagged_grades
    data = report.gradescope(list(results.values()), "out", tampering=context["tampering"])
    found = data["extra_data"]["bnlab"]["tampering"]
    assert found and "sys.modules" in found[0]["what"] and "line" in found[0]["where"]
    assert data["output"].startswith("FLAGGED")
    clean = report.gradescope(list(results.values()), "out")
    assert "extra_data" not in clean
    saved = batch.save(str(tmp_path), "alice", data, "sha", "grader", 1.0, "", None)
    assert saved["extra_data"]["bnlab"]["tampering"] == found           # the batch keeps the findings
    rows = [("alice", saved), ("bob", batch.save(str(tmp_path), "bob", clean, "sha", "grader", 1.0, "", None))]
    ids = list(results)
    table = batch.grades_csv(rows, ids).splitlines()
    assert table[0].split(",")[-1] == "flagged"
    assert "sys.modules" in table[1] and table[2].endswith(",")
    summary = insight.summarize(rows, ids)
    assert list(summary["flagged"]) == ["alice"]
    assert "**Flagged**" in insight.markdown(summary) and "- alice:" in insight.markdown(summary)

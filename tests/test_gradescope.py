"""Gradescope: the autograder zip, and its run_autograder run locally against a
directory laid out like Gradescope's (/autograder moved with BNLAB_AUTOGRADER_ROOT)."""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from conftest import REFERENCE, ROOT
from autograder.core import runner
from autograder.instructor import gradescope

HOSTILE = os.path.join(ROOT, "tests", "hostile")
NOTEBOOKS = os.path.join(ROOT, "solutions", "bn_resnet_densenet")


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("zip") / "bnlab-gradescope.zip"
    proc = subprocess.run([sys.executable, "-m", "autograder", "gradescope-zip", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return path


def gradescope_root(zip_path, folder):
    """/autograder as Gradescope lays it out: source/ (the zip), run_autograder, submission/, results/."""
    root = folder / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        os.chmod(root / "source" / name, 0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def run_autograder(root):
    env = dict(os.environ, BNLAB_AUTOGRADER_ROOT=str(root), BNLAB_PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(root / "run_autograder")], cwd="/", env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return json.loads((root / "results" / "results.json").read_text()), proc


def test_zip_layout(zip_path):
    with zipfile.ZipFile(zip_path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
    names = set(infos)
    assert {"setup.sh", "run_autograder", "autograder/__main__.py", "autograder/core/runner.py",
            "autograder/hidden/quiz_key.py", "autograder/student_side/worker.py"} <= names
    hidden_here = {f"autograder/hidden/{n}" for n in os.listdir(os.path.join(ROOT, "autograder", "hidden"))
                   if n.endswith(".py")}
    assert hidden_here <= names
    assert not [n for n in names if n.startswith(("tests/", "solutions/", "assignments/")) or "__pycache__" in n
                or n.endswith(".pyc")]
    for name in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[name].external_attr >> 16) == 0o755
    assert "@TORCH_VERSION@" not in setup and "torch==" in setup


def test_scripts_are_valid_bash(zip_path, tmp_path):
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp_path)
    for name in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(tmp_path / name)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_reference_notebooks_get_full_marks_with_the_hidden_checks(zip_path, tmp_path):
    root = gradescope_root(zip_path, tmp_path)
    for name in os.listdir(NOTEBOOKS):
        if name.endswith(".ipynb"):
            shutil.copy(os.path.join(NOTEBOOKS, name), root / "submission" / name)
    report, proc = run_autograder(root)
    assert [t["name"] for t in report["tests"]] == [c.id for c in runner.selected_checks(True)]
    failed = [(t["name"], t["output"]) for t in report["tests"] if t["status"] != "passed"]
    assert not failed
    assert report["score"] == sum(t["max_score"] for t in report["tests"]) > 0
    assert {t["visibility"] for t in report["tests"]} == {"visible", "after_published"}
    assert report["execution_time"] > 0 and "bnlab:" in proc.stdout


def test_hostile_upload_in_a_folder_cannot_forge_the_report(zip_path, tmp_path):
    """A zip of a folder (one level down) whose code writes fake results.json files everywhere."""
    root = gradescope_root(zip_path, tmp_path)
    (root / "submission" / "my_folder").mkdir()
    with open(REFERENCE, encoding="utf-8") as f, open(os.path.join(HOSTILE, "fake_results.py"), encoding="utf-8") as g:
        (root / "submission" / "my_folder" / "work.py").write_text(f.read() + "\n\n" + g.read(), encoding="utf-8")
    report, _ = run_autograder(root)
    tests = {t["name"]: t for t in report["tests"]}
    assert "pwned" not in tests and report["score"] < sum(t["max_score"] for t in report["tests"])
    assert tests["batch_norm.train_stats_2d"]["status"] == "failed"
    assert tests["quiz.q1"]["status"] == "passed" and tests["transition_block.values"]["status"] == "passed"


def test_empty_upload_gets_a_zero_report_that_says_why(zip_path, tmp_path):
    root = gradescope_root(zip_path, tmp_path)
    (root / "submission" / "README.txt").write_text("oops")
    report, _ = run_autograder(root)
    assert report["score"] == 0 and "no notebook (.ipynb) or .py file" in report["output"]


def test_find_target_prefers_the_shallowest_notebooks(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "a" / "b" / "x.ipynb").write_text("{}")
    (tmp_path / "c" / "y.ipynb").write_text("{}")
    (tmp_path / "z.py").write_text("")
    assert gradescope.find_target(str(tmp_path)) == str(tmp_path / "c")
    assert gradescope.find_target(str(tmp_path / "a")) == str(tmp_path / "a" / "b")

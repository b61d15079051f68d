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

pytestmark = pytest.mark.xdist_group("test_gradescope")   # its module fixtures are built once, in one test process

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


def run_autograder(root, **env_extra):
    env = dict(os.environ, BNLAB_AUTOGRADER_ROOT=str(root), BNLAB_PYTHON=sys.executable, **env_extra)
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
    assert "@TORCH_VERSION@" not in setup and "@TORCHVISION_VERSION@" not in setup
    from importlib.metadata import version
    assert f'"torch=={version("torch").split("+")[0]}"' in setup
    assert f'"torchvision=={version("torchvision").split("+")[0]}"' in setup


def test_hidden_material_is_root_only_in_the_zip(zip_path):
    """The hidden checks, the quiz key and the rubric: 0600 in the zip (and the zip itself 0600)."""
    assert stat.S_IMODE(os.stat(zip_path).st_mode) == 0o600
    with zipfile.ZipFile(zip_path) as zf:
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()}
    hidden = [n for n in modes if n.startswith("autograder/hidden/") or n == gradescope.RUBRIC]
    assert "autograder/hidden/quiz_key.py" in hidden and gradescope.RUBRIC in hidden
    assert {modes[n] for n in hidden} == {0o600}
    public = [n for n in modes if n not in hidden and n not in ("setup.sh", "run_autograder")]
    assert public and {modes[n] for n in public} == {0o644}


def test_setup_makes_python_readable_and_hidden_material_root_only(zip_path):
    with zipfile.ZipFile(zip_path) as zf:
        setup = zf.read("setup.sh").decode()
    assert "chmod -R a+rX /autograder/venv" in setup
    assert "chmod -R go-rwx /autograder/source/autograder/hidden /autograder/source/bnlab_rubric.json" in setup


def test_run_autograder_leaves_hidden_material_root_only_on_disk(zip_path, tmp_path):
    root = gradescope_root(zip_path, tmp_path)
    hidden = root / "source" / "autograder" / "hidden"
    os.chmod(hidden / "quiz_key.py", 0o644)   # as a careless unzip would leave it
    (root / "submission" / "README.txt").write_text("oops")
    run_autograder(root)
    for path in [hidden, hidden / "quiz_key.py", root / "source" / gradescope.RUBRIC]:
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path


# ---- run_autograder always writes a report ----

def not_graded(zip_path, tmp_path, python):
    """run_autograder with BNLAB_PYTHON=python: a zero report for every check, saying why."""
    root = gradescope_root(zip_path, tmp_path)
    shutil.copy(REFERENCE, root / "submission" / "work.py")
    env = dict(os.environ, BNLAB_AUTOGRADER_ROOT=str(root), BNLAB_PYTHON=str(python))
    proc = subprocess.run(["bash", str(root / "run_autograder")], cwd="/", env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((root / "results" / "results.json").read_text())
    assert report["score"] == 0 and report["output"].startswith("NOT GRADED: ")
    assert "NOT GRADED" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    rubric = json.loads((root / "source" / gradescope.RUBRIC).read_text())
    assert [t["name"] for t in report["tests"]] == [c["id"] for c in rubric] == \
        [c.id for c in runner.selected_checks(True)]
    assert all(t["score"] == 0 and t["status"] == "failed" for t in report["tests"])
    assert {t["visibility"] for t in report["tests"]} == {"visible", "after_published"}
    return report


def test_no_venv_gives_a_zero_report_not_a_crash(zip_path, tmp_path):
    report = not_graded(zip_path, tmp_path, tmp_path / "no-such-venv" / "bin" / "python")
    assert "setup.sh did not finish" in report["output"]


def test_a_python_without_torch_gives_a_zero_report(zip_path, tmp_path):
    """The venv exists but torch is not installed (here: the same Python without site-packages)."""
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    bare.chmod(0o755)
    assert subprocess.run([str(bare), "-c", "import torch"], capture_output=True).returncode != 0
    report = not_graded(zip_path, tmp_path, bare)
    assert "PyTorch is not installed" in report["output"]


def test_a_crashing_grader_gives_a_zero_report(zip_path, tmp_path):
    """The grader's Python dies at once (a broken install): the report still appears, from python3 or the shell."""
    crash = tmp_path / "crashing-python"
    crash.write_text(f'#!/bin/sh\n[ "$3" = gradescope-fail ] && exec "{sys.executable}" -S "$@"\nexit 3\n')
    crash.chmod(0o755)
    report = not_graded(zip_path, tmp_path, crash)
    assert "exit status 3" in report["output"]


def test_zip_goes_to_an_ignored_build_folder_by_default(tmp_path):
    parser = gradescope.add_arguments(__import__("argparse").ArgumentParser(), "gradescope-zip")
    assert parser.parse_args([]).out == gradescope.DEFAULT_ZIP == os.path.join("build", "bnlab-gradescope.zip")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(os.path.join(ROOT, ".gitignore"), repo / ".gitignore")
    (repo / "build").mkdir()
    ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", gradescope.DEFAULT_ZIP])
    assert ignored.returncode == 0, "the repository's .gitignore must ignore the default zip"
    assert not gradescope.git_exposed(str(repo / gradescope.DEFAULT_ZIP))
    assert gradescope.git_exposed(str(repo / "grader.zip"))  # beside the code: git would offer it
    assert not gradescope.git_exposed(str(tmp_path / "elsewhere.zip"))  # not in a work tree


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


def test_a_container_without_namespaces_gives_a_zero_report_that_says_no_sandbox(zip_path, tmp_path):
    """The sandbox fails closed; the student (and the instructor, on stderr) learn why, not "the grader failed"."""
    root = gradescope_root(zip_path, tmp_path)
    shutil.copy(REFERENCE, root / "submission" / "reference.py")
    report, proc = run_autograder(root, BNLAB_SANDBOX_NO_NAMESPACES="1")
    assert report["score"] == 0 and "no sandbox" in report["output"] and "nothing of yours was run" in report["output"]
    assert all("no sandbox" in t["output"] for t in report["tests"])
    assert "NOT GRADED: no sandbox" in proc.stderr


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


def test_without_any_python_the_shell_still_writes_a_zero_report(zip_path, tmp_path):
    """No venv and no python3 on PATH: run_autograder writes a bare report by itself."""
    root = gradescope_root(zip_path, tmp_path)
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("mkdir", "rm", "chmod", "tr"):
        os.symlink(shutil.which(name), tools / name)
    env = {"PATH": str(tools), "BNLAB_AUTOGRADER_ROOT": str(root), "BNLAB_PYTHON": str(tmp_path / "none" / "python")}
    proc = subprocess.run([shutil.which("bash"), str(root / "run_autograder")], cwd="/", env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((root / "results" / "results.json").read_text())
    assert report["score"] == 0 and report["tests"] == []
    assert report["output"].startswith("NOT GRADED: the grader's Python") and "setup.sh did not finish" in report["output"]

"""GitHub Classroom / Actions: the workflow template parses and runs the grader, and the
command its Grade step runs works against a student-repository layout, here as on a runner
(GITHUB_WORKSPACE, GITHUB_STEP_SUMMARY, working directory outside the checkout)."""
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import ROOT
from autograder.core import runner
from autograder.instructor import actions_summary as summary_md

pytestmark = pytest.mark.xdist_group("test_classroom")   # its module fixtures are built once, in one test process

WORKFLOW = os.path.join(ROOT, "templates", "github-classroom", ".github", "workflows", "grade.yml")
RELEASE = os.path.join(ROOT, "assignments", "bn_resnet_densenet")


@pytest.fixture(scope="module")
def workflow():
    with open(WORKFLOW, encoding="utf-8") as f:
        return yaml.safe_load(f)


def steps(workflow):
    return workflow["jobs"]["grade"]["steps"]


def grade_step(workflow):
    return next(s for s in steps(workflow) if s.get("id") == "grade")


def test_workflow_grades_on_push_with_the_private_grader(workflow):
    assert "push" in workflow[True]  # YAML 1.1 reads the key `on` as True
    checkouts = [s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/checkout@")]
    student, grader = checkouts
    assert student["with"]["path"] == workflow["env"]["BNLAB_SUBMISSION"]
    assert "vars.BNLAB_GRADER_REPO" in grader["with"]["repository"]
    assert "secrets." in grader["with"]["ssh-key"]
    run = grade_step(workflow)["run"]
    assert re.search(r"python -m autograder grade \S+ --quiet", run)
    assert "--results" in run and "--junit" in run
    assert 'python -m autograder actions-summary "$GITHUB_WORKSPACE/results.json" --out "$GITHUB_STEP_SUMMARY"' in run
    upload = next(s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert "junit.xml" in upload["with"]["path"] and upload["if"] == "always()"


def test_grade_step_on_a_student_repository(workflow, tmp_path):
    """The student's repository as GitHub Classroom creates it from the release (untouched: all stubs)."""
    workspace, runner_temp = tmp_path / "workspace", tmp_path / "runner_temp"
    runner_temp.mkdir()
    student = workspace / workflow["env"]["BNLAB_SUBMISSION"]
    shutil.copytree(RELEASE, student)
    shutil.copytree(os.path.dirname(os.path.dirname(WORKFLOW)), student / ".github")
    (student / "autograder").mkdir()  # a folder of the student's that must not shadow the grader
    (student / "autograder" / "__init__.py").write_text("raise SystemExit('shadowed')\n")
    summary = tmp_path / "step_summary.md"
    summary.write_text("")
    step = grade_step(workflow)
    assert step["working-directory"] == "${{ runner.temp }}"
    env = dict(os.environ, **workflow["env"], **step.get("env", {}), GITHUB_WORKSPACE=str(workspace),
               GITHUB_STEP_SUMMARY=str(summary), RUNNER_TEMP=str(runner_temp),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=ROOT)  # the grader, as the install step leaves it: importable from anywhere
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=runner_temp, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((workspace / "results.json").read_text())
    ids = [c.id for c in runner.selected_checks(True)]
    assert [t["name"] for t in report["tests"]] == ids and report["score"] == 0
    cases = ET.parse(workspace / "junit.xml").getroot().findall("testcase")
    assert [c.get("name") for c in cases] == ids
    md = summary.read_text()
    top = sum(t["max_score"] for t in report["tests"])
    assert md.startswith(f"## bnlab: 0 / {top:g} (0%)")
    assert "| ❌ | `batch_norm.returns_triple` | 0 / 1 |" in md
    assert "- `batch_norm.returns_triple`: batch_norm (training, 2-D input of shape (8, 3)): not implemented yet" in md
    assert f"- `batch_norm.moving_average`: {summary_md.HIDDEN_NOTE}" in md
    assert md.count("| ❌ |") == len(ids) and "not implemented yet" in proc.stdout


def fake(status, hidden=False, message="expected 1 | got 2\nsecond line"):
    return {"name": f"p.{status}{'_hidden' if hidden else ''}", "score": 2.0 if status == "passed" else 0.0,
            "max_score": 2.0, "status": status, "output": "title\n" + message,
            "visibility": "after_published" if hidden else "visible"}


def test_markdown_table_escapes_and_hides_hidden_messages():
    report = {"score": 2.0, "tests": [fake("passed"), fake("failed"), fake("failed", hidden=True)]}
    md = summary_md.markdown(report)
    assert md.startswith("## bnlab: 2 / 6 (33%)\n\n1 of 3 checks passed.")
    assert "| ✅ | `p.passed` | 2 / 2 |" in md and "| ❌ | `p.failed_hidden` (hidden) | 0 / 2 |" in md
    assert "- `p.failed`: expected 1 \\| got 2<br>second line" in md
    assert f"- `p.failed_hidden`: {summary_md.HIDDEN_NOTE}" in md
    assert "- `p.failed_hidden`: expected 1" in summary_md.markdown(report, show_hidden=True)


def test_markdown_takes_runner_results_too():
    from autograder.core.runner import Result
    results = [Result("a.b", "a", "t", 1.0, 1.0, False, True, "", 0.1),
               Result("a.c", "a", "t", 0.0, 2.0, False, False, "wrong", 0.1)]
    md = summary_md.markdown(results)
    assert md.startswith("## bnlab: 1 / 3") and "- `a.c`: wrong" in md


# ---- the workflow templates: lint, pins, cache, early failure ----

TEMPLATES = os.path.join(ROOT, "templates")
CLASS_SCALE = os.path.join(ROOT, "docs", "class-scale.md")


def workflow_files():
    found = []
    for folder, _, names in os.walk(TEMPLATES):
        found += [os.path.join(folder, n) for n in names if n.endswith((".yml", ".yaml"))]
    return sorted(found)


def lint(flow, where):
    """Structure GitHub Actions needs: jobs with runs-on and steps, each step `uses` XOR `run`."""
    assert isinstance(flow, dict) and flow.get("jobs"), where
    for name, job in flow["jobs"].items():
        assert job.get("runs-on"), (where, name)
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), (where, name, step)
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w.-]+)*@v\d+", step["uses"]), (where, step["uses"])


def test_every_workflow_template_parses_and_lints():
    files = workflow_files()
    assert WORKFLOW in files
    for path in files:
        with open(path, encoding="utf-8") as f:
            lint(yaml.safe_load(f), path)


def test_torch_is_pinned_like_the_gradescope_bundle(workflow):
    from importlib.metadata import version
    env = workflow["env"]
    assert env["TORCH_VERSION"] == version("torch").split("+")[0]
    assert env["TORCHVISION_VERSION"] == version("torchvision").split("+")[0]
    with open(os.path.join(TEMPLATES, "gradescope", "setup.sh"), encoding="utf-8") as f:
        setup = f.read()
    assert '"torch==@TORCH_VERSION@" "torchvision==@TORCHVISION_VERSION@"' in setup  # filled from the same env
    install = next(s for s in steps(workflow) if "pip install" in s.get("run", "") and ".grader" in s["run"])
    assert '"torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"' in install["run"]
    assert "download.pytorch.org/whl/cpu" in install["run"]


def test_pip_downloads_are_cached(workflow):
    names = [str(s.get("uses", "")) for s in steps(workflow)]
    cache = steps(workflow)[names.index(next(n for n in names if n.startswith("actions/cache@")))]
    assert "pip" in cache["with"]["path"] and "TORCH_VERSION" in cache["with"]["key"]
    install = next(i for i, s in enumerate(steps(workflow)) if "pip install" in s.get("run", ""))
    assert names.index(cache["uses"]) < install


def settings_check(workflow):
    return steps(workflow)[0]


@pytest.mark.parametrize("repo, has_key, fails_with", [
    ("", "true", "BNLAB_GRADER_REPO"),
    ("org/grader", "false", "BNLAB_GRADER_DEPLOY_KEY"),
    ("org/grader", "true", None),
])
def test_missing_grader_settings_fail_first_and_say_which(workflow, repo, has_key, fails_with):
    step = settings_check(workflow)
    assert "vars.BNLAB_GRADER_REPO" in step["env"]["GRADER_REPO"]
    assert "secrets.BNLAB_GRADER_DEPLOY_KEY" in step["env"]["HAS_DEPLOY_KEY"]
    checkouts = [i for i, s in enumerate(steps(workflow)) if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert steps(workflow).index(step) < min(checkouts)
    env = dict(os.environ, GRADER_REPO=repo, HAS_DEPLOY_KEY=has_key)
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=60)
    if fails_with is None:
        assert proc.returncode == 0 and "grading with org/grader" in proc.stdout
    else:
        assert proc.returncode == 1 and f"::error title=bnlab" in proc.stdout and fails_with in proc.stdout


def docs_workflow_sketch():
    with open(CLASS_SCALE, encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    return yaml.safe_load(blocks[0])


def test_class_scale_sketch_collects_with_working_matplotlib_and_always_uploads():
    sketch = docs_workflow_sketch()
    lint(sketch, CLASS_SCALE)
    runs = "\n".join(s.get("run", "") for job in sketch["jobs"].values() for s in job["steps"])
    assert not re.search(r"--no-deps[^\n&|;#]*matplotlib", runs)
    assert "pip install matplotlib" in runs
    uploads = [s for job in sketch["jobs"].values() for s in job["steps"]
               if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert len(uploads) == 2 and all(s.get("if") == "always()" for s in uploads)

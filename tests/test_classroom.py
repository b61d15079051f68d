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

"""The CI door: python -m autograder grade SUBMISSION --results --junit."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, grade_path

pytestmark = pytest.mark.xdist_group("test_cli")   # its module fixtures are built once, in one test process

SUBMISSIONS = os.path.join(ROOT, "tests", "submissions")


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    proc = run_cli("grade", os.path.join(SUBMISSIONS, "reference.py"), "--results", str(out / "r.json"),
                   "--junit", str(out / "j.xml"))
    return proc, json.loads((out / "r.json").read_text()), ET.parse(out / "j.xml").getroot()


def test_reference_full_marks_through_cli(reference_report):
    proc, report, _ = reference_report
    assert proc.returncode == 0, proc.stderr
    assert report["score"] == sum(t["max_score"] for t in report["tests"]) > 0
    assert "total" in proc.stdout


def test_results_json_follows_gradescope_schema(reference_report):
    _, report, _ = reference_report
    assert set(report) >= {"score", "tests"}
    for t in report["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert t["status"] in ("passed", "failed")
        assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert 0 <= t["score"] <= t["max_score"]


def test_test_names_are_the_check_ids(reference_report):
    from autograder.core import runner
    _, report, _ = reference_report
    assert [t["name"] for t in report["tests"]] == [c.id for c in runner.selected_checks(True)]


def test_junit_carries_points(reference_report):
    _, report, root = reference_report
    cases = root.findall("testcase")
    assert [c.get("name") for c in cases] == [t["name"] for t in report["tests"]]
    for case, t in zip(cases, report["tests"]):
        props = {p.get("name"): float(p.get("value")) for p in case.iter("property")}
        assert props == {"points": t["score"], "max_points": t["max_score"]}


def test_stub_scores_zero_and_says_not_implemented(tmp_path):
    proc = run_cli("grade", os.path.join(SUBMISSIONS, "stub.py"), "--results", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["score"] == 0
    code_tests = [t for t in report["tests"] if not t["name"].startswith("quiz.")]
    assert code_tests and all("not implemented yet" in t["output"] for t in code_tests)
    assert "Traceback" not in proc.stdout + proc.stderr


def test_missing_submission_is_a_usage_error(tmp_path):
    proc = run_cli("grade", str(tmp_path / "nope.ipynb"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_cli_and_in_process_give_the_same_scores(reference_report):
    _, report, _ = reference_report
    in_process = grade_path(os.path.join(SUBMISSIONS, "reference.py"))
    assert {t["name"]: t["score"] for t in report["tests"]} == {i: r.score for i, r in in_process.items()}


def test_time_limit_is_hard_and_includes_loading(tmp_path):
    """--time-limit counts from the start of grading: a limit shorter than starting Python and torch in the
    worker ends grading while the submission is still loading, with every check saying so."""
    import time
    start = time.monotonic()
    proc = run_cli("grade", os.path.join(SUBMISSIONS, "reference.py"), "--results", str(tmp_path / "r.json"),
                   "--time-limit", "0.5", "--only", "batch_norm", "quiz")
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["score"] == 0 and report["tests"]
    assert all("time limit for the whole submission (0.5 s) ran out" in t["output"] for t in report["tests"])
    assert seconds < 60, seconds


def test_default_limits_are_stated_in_the_help():
    from autograder.core import student
    proc = run_cli("grade", "--help")
    assert f"default {student.PROBE_TIMEOUT_S:g}" in proc.stdout and "600" in proc.stdout


def test_student_view_hides_hidden_messages_in_every_report(tmp_path, monkeypatch):
    """grade --student-view (the GitHub Classroom template's reports): hidden checks as the course setting says."""
    stub = os.path.join(SUBMISSIONS, "stub.py")
    only = ["batch_norm.returns_triple", "batch_norm.train_stats_2d"]     # one public, one hidden
    for setting, shown in (("score", False), ("message", True)):
        env = dict(os.environ, BNLAB_HIDDEN_FEEDBACK=setting)
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", stub, "--student-view", "--only", *only,
                               "--results", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml")],
                              cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr
        tests = {t["name"]: t for t in json.loads((tmp_path / "r.json").read_text())["tests"]}
        junit = (tmp_path / "j.xml").read_text()
        assert "not implemented yet" in tests["batch_norm.returns_triple"]["output"]   # public: always shown
        hidden = tests["batch_norm.train_stats_2d"]["output"]
        assert ("not implemented yet" in hidden) == shown, (setting, hidden)
        assert ("hidden check: only its score is shown" in hidden) == (not shown)
        assert junit.count("not implemented yet") == (2 if shown else 1), junit


def test_every_command_is_one_cli():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("grade", "rubric", "grade-batch", "collect", "gradescope-zip", "gradescope-run", "gradescope-fail",
                    "actions-summary", "nbgrader-verify", "build-release"):
        assert command in proc.stdout, command
        assert run_cli(command, "--help").returncode == 0, command

"""The nbgrader door's pieces, without running nbgrader (tests/test_nbgrader_e2e.py runs it for real):
GradeInSandbox's outputs and cache, the pipeline it replaces Execute in, the hidden-feedback setting shared
by nbgrader feedback, Gradescope and the GitHub summary."""
import json
import os

import nbformat
import pytest

from autograder import course
from autograder.core import report, runner
from autograder.instructor import actions_summary as summary_md, gradescope, nbgrader_autograde
from autograder.instructor.nbgrader_hooks import HideHiddenTests

ENV = course.SETTINGS["hidden_feedback"].env


def result(check_id, passed, points=2.0, message="", hidden=True):
    return runner.Result(check_id, check_id.split(".")[0], f"title of {check_id}", points if passed else 0.0,
                         points, hidden, passed, message, 0.0)


def grade_cell(check_id, hidden, points=2):
    call = (f"from autograder.notebook import check as check_hidden\ncheck_hidden({check_id!r})" if hidden
            else f"from bnlab_public.notebook import check\ncheck({check_id!r})")
    source = (f"# test\n### BEGIN HIDDEN TESTS\n{call}\n### END HIDDEN TESTS" if hidden else
              f"# test\n{call.splitlines()[0]}\n### BEGIN HIDDEN TESTS\nfrom autograder.notebook import check\n"
              f"### END HIDDEN TESTS\n{call.splitlines()[1]}")
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "points": points, "grade_id": f"id_{check_id}"}})


# ---- the hidden-feedback setting: flag, then environment, then default ----

def test_hidden_feedback_resolution(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert report.hidden_feedback() == course.SETTINGS["hidden_feedback"].default == "score"
    monkeypatch.setenv(ENV, "Message")
    assert report.hidden_feedback() == "message"
    assert report.hidden_feedback("score") == "score", "the flag wins over the environment"
    monkeypatch.setenv(ENV, "everything")
    with pytest.raises(ValueError, match=ENV):
        report.hidden_feedback()


def test_hidden_view_keeps_scores_and_drops_hidden_messages(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    data = report.gradescope([result("a.pub", False, message="public why", hidden=False),
                              result("a.hid", False, message="hidden input (3, 4)"),
                              result("a.ok", True, message="a note")])
    seen = {t["name"]: t for t in report.hidden_view(data)["tests"]}
    assert seen["a.pub"]["output"] == "title of a.pub\npublic why"
    assert seen["a.hid"]["output"] == f"title of a.hid\n{report.HIDDEN_NOTE}"
    assert seen["a.ok"]["output"] == "title of a.ok"
    assert [t["score"] for t in seen.values()] == [0, 0, 2]
    assert report.hidden_view(data, "message") == data
    monkeypatch.setenv(ENV, "message")
    assert report.hidden_view(data) == data


def test_summary_follows_the_setting(monkeypatch):
    data = report.gradescope([result("a.hid", False, message="hidden input (3, 4)")])
    monkeypatch.delenv(ENV, raising=False)
    assert "hidden input" not in summary_md.markdown(data) and report.HIDDEN_NOTE in summary_md.markdown(data)
    monkeypatch.setenv(ENV, "message")
    assert "hidden input (3, 4)" in summary_md.markdown(data)


def test_gradescope_results_follow_the_setting(monkeypatch, tmp_path):
    from autograder.instructor import batch
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "a.py").write_text("x = 1\n")
    fake = report.gradescope([result("a.hid", False, message="hidden input (3, 4)")])
    monkeypatch.setattr(batch, "grade_submission", lambda target: json.loads(json.dumps(fake)))
    for setting, shown in (("score", report.HIDDEN_NOTE), ("message", "hidden input (3, 4)")):
        monkeypatch.setenv(ENV, setting)
        gradescope.run_autograder(str(tmp_path))
        with open(tmp_path / "results" / "results.json", encoding="utf-8") as f:
            (test,) = json.load(f)["tests"]
        assert test["output"] == f"title of a.hid\n{shown}"


# ---- feedback: hidden regions out, hidden messages per the setting ----

def feedback_of(cells, setting):
    nb = nbformat.v4.new_notebook(cells=cells)
    out, _ = HideHiddenTests(hidden_feedback=setting).preprocess(nb, {})
    return out.cells


def graded_cells():
    cells = [grade_cell("a.hid", hidden=True), grade_cell("a.pub", hidden=False)]
    cells[0].outputs = nbgrader_autograde.test_cell_outputs("a.hid", False, 0, 2, "hidden input (3, 4)")
    cells[1].outputs = nbgrader_autograde.test_cell_outputs("a.pub", False, 0, 2, "public why")
    return cells


@pytest.mark.parametrize("setting", ["score", "message"])
def test_feedback_cells(setting):
    hidden, public = feedback_of(graded_cells(), setting)
    assert "check_hidden" not in hidden.source and "HIDDEN TESTS" not in public.source
    assert public.outputs[0].text == "FAIL  a.pub  0 / 2  public why\n"
    assert public.outputs[1].traceback == ["CheckFailed: a.pub: public why"]
    want = "hidden input (3, 4)" if setting == "message" else report.HIDDEN_NOTE
    assert hidden.outputs[0].text == f"FAIL  a.hid  0 / 2  {want}\n"
    assert [o.output_type for o in hidden.outputs] == ["stream", "error"], "still scored as a failure"
    assert ("hidden input" in json.dumps(hidden.outputs)) == (setting == "message")


# ---- GradeInSandbox: outputs from the folder's results, computed once per content ----

def autograde(tmp_path, cells):
    """GradeInSandbox as nbgrader runs it: built by an exporter whose parent is the Autograde converter."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Configurable
    converter = Configurable()
    converter.coursedir = CourseDirectory(root=str(tmp_path))
    grader = nbgrader_autograde.GradeInSandbox(parent=Configurable(parent=converter))
    nb = nbformat.v4.new_notebook(cells=cells)
    resources = {"nbgrader": {"student": "s1", "assignment": "hw"}}
    return grader.preprocess(nb, resources)[0].cells


def test_grade_in_sandbox_writes_outputs_once_per_folder_content(tmp_path, monkeypatch):
    folder = tmp_path / "submitted" / "s1" / "hw"
    folder.mkdir(parents=True)
    (folder / "01.ipynb").write_text("{}")
    calls = []

    def fake_grade_folder(path, probe_timeout, time_limit):
        calls.append((path, probe_timeout))
        return {"a.hid": result("a.hid", False, message="hidden input (3, 4)"), "a.pub": result("a.pub", True)}

    monkeypatch.setattr(nbgrader_autograde, "grade_folder", fake_grade_folder)
    monkeypatch.setenv(course.SETTINGS["probe_timeout"].env, "7")
    demo = nbformat.v4.new_code_cell("print('hi')", outputs=[nbformat.v4.new_output("stream", text="pass  a.hid 2 / 2")],
                                     execution_count=3)
    unknown = grade_cell("a.gone", hidden=False)
    cells = autograde(tmp_path, [demo, grade_cell("a.hid", True), grade_cell("a.pub", False), unknown])
    assert calls == [(os.path.realpath(folder), 7.0)]
    assert cells[0].outputs == [] and cells[0].execution_count is None, "other cells are not run and show nothing"
    assert cells[1].outputs[0].text == "FAIL  a.hid  0 / 2  hidden input (3, 4)\n"
    assert cells[1].outputs[1].output_type == "error"
    assert [o.output_type for o in cells[2].outputs] == ["stream"] and cells[2].outputs[0].text == "pass  a.pub  2 / 2\n"
    assert cells[3].outputs[0].output_type == "error" and "no check of this grader" in cells[3].outputs[0].evalue
    autograde(tmp_path, [grade_cell("a.pub", False)])
    assert len(calls) == 1, "the submission's other notebooks reuse the results"
    (folder / "01.ipynb").write_text('{"changed": 1}')
    autograde(tmp_path, [grade_cell("a.pub", False)])
    assert len(calls) == 2, "a changed submission is graded again"


def test_the_pre_convert_hook_starts_the_grading_that_grade_in_sandbox_then_uses(tmp_path, monkeypatch):
    """nbgrader_config.py sets ``c.Autograde.pre_convert_hook = start_grading``: the grading starts before
    nbgrader copies and sanitizes the notebooks, with GradeInSandbox's settings, and runs once."""
    from traitlets.config import Application, Config
    folder = tmp_path / "submitted" / "s1" / "hw"
    folder.mkdir(parents=True)
    (folder / "01.ipynb").write_text("{}")
    calls = []

    def fake_grade_folder(path, probe_timeout, time_limit):
        calls.append((path, probe_timeout, time_limit))
        return {"a.pub": result("a.pub", False, message="why")}

    monkeypatch.setattr(nbgrader_autograde, "grade_folder", fake_grade_folder)
    config = Config()
    config.GradeInSandbox.time_limit = 99.0
    Application.clear_instance()
    Application.instance(config=config)
    try:
        nbgrader_autograde.start_grading(assignment="hw", student="s1", notebooks=[str(folder / "01.ipynb")])
        nbgrader_autograde.grading(str(folder), course.setting("probe_timeout"), 99.0)["future"].result(timeout=60)
        assert calls == [(os.path.realpath(folder), course.setting("probe_timeout"), 99.0)]
        grader = nbgrader_autograde.GradeInSandbox(config=config)
        grader.submitted_folder = lambda student, assignment: str(folder)
        nb = nbformat.v4.new_notebook(cells=[grade_cell("a.pub", False)])
        cells = grader.preprocess(nb, {"nbgrader": {"student": "s1", "assignment": "hw"}})[0].cells
        assert cells[0].outputs[0].text == "FAIL  a.pub  0 / 2  why\n" and len(calls) == 1
    finally:
        Application.clear_instance()


def test_the_course_config_sets_the_hook():
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "nbgrader_config.py")) as f:
        assert "c.Autograde.pre_convert_hook = start_grading" in f.read()


def test_nbgrader_scores_the_outputs_as_the_cli():
    from nbgrader.utils import determine_grade
    cell = grade_cell("a.pub", False)
    cell.outputs = nbgrader_autograde.test_cell_outputs("a.pub", True, 2, 2)
    assert determine_grade(cell) == (2, 2)
    cell.outputs = nbgrader_autograde.test_cell_outputs("a.pub", False, 0, 2, "why")
    assert determine_grade(cell) == (0, 2)


def test_the_pipeline_replaces_only_execute():
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    ours = nbgrader_autograde.autograde_preprocessors()
    assert Execute in default and Execute not in ours
    assert ours == [nbgrader_autograde.GradeInSandbox if p is Execute else p for p in default]


def test_a_sandbox_that_cannot_start_fails_closed_and_is_logged(tmp_path, monkeypatch):
    """The CLI refuses without a private file system (exit 3): every check fails, saying so, once in the log."""
    import logging
    from autograder import sandbox
    monkeypatch.setenv(sandbox.NO_NAMESPACES, "1")
    monkeypatch.delenv(sandbox.UNSANDBOXED, raising=False)
    (tmp_path / "01.ipynb").write_text("{}")
    records = []
    log = logging.getLogger("test_nbgrader_autograde")
    monkeypatch.setattr(log, "error", lambda *args: records.append(args[0] % args[1:]))
    results = nbgrader_autograde.graded(str(tmp_path), 5.0, 10.0, log=log)
    assert sorted(results) == sorted(c.id for c in runner.selected_checks(include_hidden=True))
    assert all(r.score == 0 and "could not start" in r.message and "no sandbox" in r.message
               for r in results.values()), {r.message for r in results.values()}
    nbgrader_autograde.graded(str(tmp_path), 5.0, 10.0, log=log)
    assert len(records) == 1 and "please tell your instructor" in records[0]


def test_the_gradebook_gets_the_clis_results_check_by_check(tmp_path):
    """grade_folder runs the CLI: its results are the CLI's results.json, read back."""
    import shutil
    from conftest import REFERENCE
    shutil.copy(REFERENCE, tmp_path / "submission.py")
    results = nbgrader_autograde.grade_folder(str(tmp_path), 30.0, 600.0)
    assert sorted(results) == sorted(c.id for c in runner.selected_checks(include_hidden=True))
    assert all(r.passed and r.score == r.max_score > 0 for r in results.values()), \
        {r.id: r.message for r in results.values() if not r.passed}
    assert {r.id for r in results.values() if r.hidden} == {c.id for c in runner.selected_checks(True) if c.hidden}


def test_what_the_grader_said_when_it_failed_stays_out_of_the_feedback(tmp_path, monkeypatch, caplog):
    """A grader that fails (here: a bad setting, exit status 2) fails every check with its exit status;
    its stderr goes to the instructor's log only."""
    import logging
    monkeypatch.setenv(course.SETTINGS["device"].env, "bogus-device-from-stderr")
    (tmp_path / "01.ipynb").write_text("{}")
    with caplog.at_level(logging.ERROR, logger=nbgrader_autograde.__name__):
        results = nbgrader_autograde.grade_folder(str(tmp_path), 5.0, 10.0)
    messages = {r.message for r in results.values()}
    assert messages == {f"{nbgrader_autograde.COULD_NOT_START} (exit status 2); please tell your instructor"}
    assert "bogus-device-from-stderr" in caplog.text

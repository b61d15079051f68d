"""Reports a person reads: the CLI's table (checks failing alike share a line), the class
summary (wrong apart from not attempted, natural order, written without a plot), and the one
permission policy of every output file (owner-only)."""
import json
import os
import stat
import sys

import pytest

from autograder.core import report, runner
from autograder.core.runner import Result
from autograder.instructor import batch, class_summary as insight

STUB = "not implemented yet (the stub still raises NotImplementedError)"


def result(cid, passed=False, message="", points=2.0):
    piece = cid.split(".")[0]
    return Result(cid, piece, f"title of {cid}", points if passed else 0.0, points, False, passed,
                  message, 0.01)


def test_table_groups_a_pieces_checks_that_fail_for_the_same_reason():
    results = [result("batch_norm.a", message=f"batch_norm (training, (8, 3)): {STUB}"),
               result("batch_norm.b", message=f"batch_norm (prediction, (2, 3, 4, 4)): {STUB}"),
               result("batch_norm.c", passed=True),
               result("batch_norm.d", message=f"batch_norm (training, (8, 3)): {STUB}"),
               result("batch_norm.e", message="moving_mean: expected 0.3, got 2.7"),
               result("Residual.a", message=f"Residual(3, 3): {STUB}"),
               result("Residual.b", message=f"Residual(3, 6): {STUB}")]
    text = report.table(results)
    lines = text.splitlines()
    assert sum("batch_norm: 3 checks" in line for line in lines) == 1
    group = next(i for i, line in enumerate(lines) if "batch_norm: 3 checks" in line)
    assert "FAIL" in lines[group] and "0 / 6" in lines[group] and lines[group + 1].strip() == STUB
    assert group < next(i for i, line in enumerate(lines) if line.startswith("batch_norm.c"))  # first member's place
    for cid in ("batch_norm.c", "batch_norm.e", "Residual.a", "Residual.b"):  # a pass, a lone reason, a pair
        assert any(line.startswith(cid) for line in lines), cid
    assert not any(line.startswith(("batch_norm.a", "batch_norm.b", "batch_norm.d")) for line in lines)
    assert "0 / 14" in lines[-2] or "2 / 14" in text  # the total still counts every check
    assert "results.json has every check" in text
    data = report.gradescope(results)
    assert [t["name"] for t in data["tests"]] == [r.id for r in results]  # per check, as before


def test_table_of_the_untouched_stub_is_short(reference_results):
    """59 checks of an untouched stub: about one line per piece, not one per check."""
    from conftest import grade_path
    stub = os.path.join(os.path.dirname(__file__), "submissions", "stub.py")
    results = list(grade_path(stub, only=["batch_norm", "BatchNorm", "quiz"]).values())
    text = report.table(results)
    rows = [line for line in text.splitlines()[2:-3] if not line.startswith(" ")]
    assert len(results) > 20 and len(rows) <= 5, text
    assert text.count("not implemented yet") == 3, text  # batch_norm, BatchNorm, and the quiz's own message


def test_reason_drops_the_call_it_describes():
    assert report.reason(f"BatchNorm(3, 2): {STUB}") == STUB
    assert report.reason(STUB) == STUB


# ---- the class summary ----

def test_results(cid, status, message=""):
    return {"name": cid, "score": 1.0 if status == "passed" else 0.0, "max_score": 1.0, "status": status,
            "output": f"title\n{message}", "visibility": "visible"}


test_results.__test__ = False  # a helper, not a test


def class_rows():
    ids = [c.id for c in runner.selected_checks(True)]
    untouched = {"score": 0, "tests": [test_results(i, "failed", STUB) for i in ids]}
    wrong = {"score": 0, "tests": [test_results(i, "failed", f"{i}: expected 0.5 at index (0, 1), got 0.7")
                                   for i in ids]}
    right = {"score": len(ids), "tests": [test_results(i, "passed") for i in ids]}
    half = {"score": 0, "tests": [test_results(i, "failed", STUB if i.startswith("quiz") else "wrong value")
                                  for i in ids]}
    return ids, [("ann", untouched), ("ben", wrong), ("cat", right), ("dan", half)]


def test_summary_separates_not_attempted_from_wrong_and_is_short():
    ids, rows = class_rows()
    s = insight.summarize(rows, ids)
    s["plot_error"] = ""
    by_id = {c["id"]: c for c in s["checks"]}
    assert by_id["quiz.q2"]["wrong"] == 1 and by_id["quiz.q2"]["not_attempted"] == 2   # ben; ann and dan
    assert by_id["batch_norm.returns_triple"]["wrong"] == 2                              # ben, dan
    md = insight.markdown(s)
    lines = md.splitlines()
    assert len(lines) < 60, len(lines)
    assert lines[4] == "## What the class got wrong"   # leads with what the class missed
    assert "| `batch_norm.returns_triple` | batch_norm | 2 / 4 | 1 / 4 |" in md
    untried = md.split("## Not attempted")[1].split("##")[0]
    assert "| quiz | 2 / 4 |" in untried and "| batch_norm | 1 / 4 |" in untried
    assert STUB not in md.split("## Not attempted")[0]   # untouched stubs are not listed as mistakes


def test_check_ids_sort_naturally():
    assert sorted(["quiz.q10", "quiz.q2", "quiz.q1"], key=insight.natural_key) == ["quiz.q1", "quiz.q2", "quiz.q10"]
    rows = [("ann", {"score": 0, "tests": [test_results("quiz.q10", "failed", "q10: wrong"),
                                           test_results("quiz.q2", "failed", "q2: wrong")]})]
    s = insight.summarize(rows, ["quiz.q10", "quiz.q2"])
    s["plot_error"] = ""
    md = insight.markdown(s)
    assert md.index("`quiz.q2`") < md.index("`quiz.q10`")


def test_summary_is_written_when_matplotlib_cannot_draw(tmp_path, monkeypatch):
    ids, rows = class_rows()
    (tmp_path / "scores.png").write_bytes(b"stale")
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # `import matplotlib` raises ImportError
    s = insight.write_summary(str(tmp_path), rows, ids)
    assert "ModuleNotFoundError" in s["plot_error"]
    md = (tmp_path / "summary.md").read_text()
    assert "No score plot: matplotlib could not draw it" in md and "scores.png)" not in md
    assert json.loads((tmp_path / "summary.json").read_text())["students"] == 4
    assert not (tmp_path / "scores.png").exists()   # no stale plot beside a fresh summary


# ---- one permission policy ----

def test_every_output_file_is_owner_only_whatever_the_umask(tmp_path):
    ids, rows = class_rows()
    old = os.umask(0o022)
    try:
        for student, data in rows:
            report.write_json(str(tmp_path / student / "results.json"), data)
        batch.collect(str(tmp_path))
        report.write_text(str(tmp_path / "junit.xml"), "<testsuite/>")
    finally:
        os.umask(old)
    written = [os.path.join(folder, n) for folder, _, names in os.walk(tmp_path) for n in names]
    assert {"grades.csv", "summary.md", "summary.json", "scores.png", "junit.xml"} <= {os.path.basename(p)
                                                                                      for p in written}
    modes = {p: stat.S_IMODE(os.stat(p).st_mode) for p in written}
    assert set(modes.values()) == {report.OUTPUT_MODE} == {0o600}, modes

"""Batch grading: python -m autograder grade-batch SUBMISSIONS --out OUT.

One small class (the reference as a folder, the stub, one wrong variant, one
hostile), two workers, a subset of checks to keep it short; then: resume skips the
graded, a changed submission is graded again, --regrade reports who changed, and a
crashing grading process costs one zero row, not the batch.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from autograder.instructor import batch, class_summary as insight  # stdlib only at import: this module is imported by spawned pool processes

pytestmark = pytest.mark.xdist_group("test_batch")   # its module fixtures are built once, in one test process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS = os.path.join(ROOT, "tests", "submissions")
REFERENCE = os.path.join(SUBMISSIONS, "reference.py")
HOSTILE = os.path.join(ROOT, "tests", "hostile")
ONLY = ["batch_norm", "quiz"]


def run_batch(subs, out, *extra):
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(subs), "--out", str(out), "--workers", "2",
                           "--only", *ONLY, *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def checks():
    from autograder.core import runner
    return runner.selected_checks(True, ONLY)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class, graded once: (submissions folder, out folder, completed process)."""
    from variants_batch_norm import WRONG
    subs = tmp_path_factory.mktemp("class")
    out = tmp_path_factory.mktemp("out")
    (subs / "alice").mkdir()
    shutil.copy(REFERENCE, subs / "alice" / "my_work.py")
    shutil.copy(os.path.join(SUBMISSIONS, "stub.py"), subs / "bob.py")
    wrong = next(v for v in WRONG if v.id == "batch_norm_pytorch_momentum")
    os.replace(wrong.write(str(subs)), subs / "erin.py")
    with open(os.path.join(HOSTILE, "sys_exit_at_import.py"), encoding="utf-8") as f:
        hostile = f.read()
    with open(REFERENCE, encoding="utf-8") as f:
        (subs / "mallory.py").write_text(hostile + "\n" + f.read(), encoding="utf-8")
    (subs / "notes.txt").write_text("not a submission")
    return subs, out, run_batch(subs, out)


def totals(out):
    return {row["student"]: float(row["total"]) for row in read_csv(out / "grades.csv")}


def test_discover_one_submission_per_folder_or_file(graded):
    subs, _, _ = graded
    assert [s for s, _ in batch.discover(subs)] == ["alice", "bob", "erin", "mallory"]


def test_grades_csv_rows_and_columns(graded):
    _, out, proc = graded
    ids = [c.id for c in checks()]
    with open(out / "grades.csv", encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    assert header == ["student", "total", "max"] + ids + ["error", "flagged"]
    rows = {r["student"]: r for r in read_csv(out / "grades.csv")}
    top = sum(c.points for c in checks())
    assert {s: float(r["total"]) for s, r in rows.items()} == {
        "alice": top, "bob": 0, "erin": float(rows["erin"]["total"]), "mallory": 0}
    assert 0 < float(rows["erin"]["total"]) < top
    assert rows["erin"]["batch_norm.moving_average"] == "0" and rows["erin"]["batch_norm.train_stats_2d"] != "0"
    assert all(float(r["max"]) == top and r["error"] == "" for r in rows.values())
    assert "4 to grade with 2 worker(s)" in proc.stdout


def test_per_student_results_json_records_the_submission_hash(graded):
    subs, out, _ = graded
    for student, path in batch.discover(subs):
        data = json.loads((out / "students" / student / "results.json").read_text())
        assert data["extra_data"]["bnlab"]["submission_sha256"] == batch.tree_hash(path)
        assert [t["name"] for t in data["tests"]] == [c.id for c in checks()]
    mallory = json.loads((out / "students" / "mallory" / "results.json").read_text())
    assert all("SystemExit" in t["output"] for t in mallory["tests"])


def test_summary_counts_failures_and_groups_messages(graded):
    _, out, _ = graded
    s = json.loads((out / "summary.json").read_text())
    by_id = {c["id"]: c for c in s["checks"]}
    assert s["students"] == 4
    moving = by_id["batch_norm.moving_average"]
    assert moving["failed"] == 3 and moving["percent"] == 75.0          # bob, erin, mallory
    assert sorted(m["count"] for m in moving["messages"]) == [1, 1, 1]
    assert any("momentum" in m["example"] for m in moving["messages"])  # erin's mistake, named
    assert moving["wrong"] == 2 and moving["not_attempted"] == 1        # erin, mallory; bob's untouched stub
    assert by_id["quiz.q1"]["failed"] == 2                              # bob (blank), mallory (crashed)
    assert by_id["quiz.q1"]["wrong"] == 1 and by_id["quiz.q1"]["not_attempted"] == 1
    md = (out / "summary.md").read_text()
    assert "| `batch_norm.moving_average` (hidden) | batch_norm | 2 / 4 | 1 / 4 |" in md
    assert md.index("batch_norm.moving_average") < md.index("batch_norm.returns_triple")  # most wrong first
    assert "![score distribution](scores.png)" in md
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_messages_differing_only_in_numbers_are_one_group():
    a = "moving_mean: expected 0.305012 at index (0, 2), got 2.74511 (tolerance 1e-05)"
    b = "moving_mean: expected -1.85 at index (1, 0), got 3 (tolerance 1e-05)"
    assert insight.normalise(a) == insight.normalise(b)
    assert insight.normalise(a) != insight.normalise("moving_var: expected 0.3 at index (0, 2), got 2.7")


def test_second_run_grades_only_changed_or_failed_submissions_and_reports_changes(graded):
    subs, out, _ = graded
    before = {r["student"]: r for r in read_csv(out / "grades.csv")}
    shutil.copy(REFERENCE, subs / "bob.py")  # bob finally did the work; the others did not touch theirs
    mallory = out / "students" / "mallory" / "results.json"  # ... and grading mallory had failed: tried again
    data = json.loads(mallory.read_text())
    data["extra_data"]["bnlab"]["error"] = "the grader failed on this submission (MemoryError: )"
    mallory.write_text(json.dumps(data))
    proc = run_batch(subs, out)
    assert "2 to grade with 2 worker(s), 2 already graded" in proc.stdout
    assert not json.loads(mallory.read_text())["extra_data"]["bnlab"]["error"]
    top = sum(c.points for c in checks())
    assert f"bob: 0 -> {top:g} (+{top:g})" in proc.stdout
    after = {r["student"]: r for r in read_csv(out / "grades.csv")}
    assert float(after["bob"]["total"]) == top
    assert {s: r for s, r in after.items() if s != "bob"} == {s: r for s, r in before.items() if s != "bob"}
    rows = read_csv(out / "changes.csv")
    assert [(r["student"], float(r["before"]), float(r["after"])) for r in rows] == [("bob", 0, top)]
    assert "batch_norm.moving_average" in rows[0]["now_passing"].split()
    assert (out / "students" / "bob" / "results.previous.json").exists()


def test_regrade_grades_again_and_shows_who_changed(graded, tmp_path):
    """As after a check is fixed: erin's previous total differs from what the grader gives now."""
    subs, out, _ = graded
    fewer = tmp_path  # the same out folder, one of its students: a short --regrade
    shutil.copy(subs / "erin.py", fewer / "erin.py")
    path = out / "students" / "erin" / "results.json"
    old = json.loads(path.read_text())
    real = old["score"]
    old["score"] = real - 3
    old["tests"][0]["status"] = "failed"  # batch_norm.returns_triple, which erin passes
    path.write_text(json.dumps(old))
    proc = run_batch(fewer, out, "--regrade")
    assert "1 to grade" in proc.stdout and "graded again: 1 student(s); total changed for 1" in proc.stdout
    assert f"erin: {real - 3:g} -> {real:g} (+3); now passing: batch_norm.returns_triple" in proc.stdout
    rows = read_csv(out / "changes.csv")
    assert [r["student"] for r in rows] == ["erin"] and rows[0]["change"] == "+3"


def crashing_job(student, path, options):
    """A pool job whose process dies for one student (run in the pool's spawned processes)."""
    if student == "crash":
        os._exit(3)
    return student, {"score": 1.0, "tests": []}, 0.0, ""


def test_a_dying_grading_process_costs_one_zero_row_not_the_batch():
    done = {}
    jobs = [("a", "x"), ("crash", "y"), ("b", "z")]
    batch.run_pool(jobs, 2, {"include_hidden": True, "only": ["quiz"]},
                   lambda s, data, sec, err: done.__setitem__(s, (data, err)), job=crashing_job, initializer=None)
    assert set(done) == {"a", "b", "crash"}
    assert done["a"][0]["score"] == 1.0 and done["b"][0]["score"] == 1.0
    data, err = done["crash"]
    assert data["score"] == 0 and "died" in err and all("not graded" in t["output"] for t in data["tests"])


def test_a_grader_failure_becomes_a_zero_row(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("sandbox could not start")
    monkeypatch.setattr(batch, "grade_submission", broken)
    student, data, _, err = batch.grade_job("zed", "nowhere.py", {"include_hidden": True, "only": ["quiz"]})
    assert student == "zed" and data["score"] == 0 and "sandbox could not start" in err
    assert len(data["tests"]) == len([c for c in checks() if c.piece == "quiz"])
    text = batch.grades_csv([("zed", dict(data, extra_data={"bnlab": {"error": err}}))], ["quiz.q1"])
    assert text.splitlines()[1].startswith("zed,0,") and "sandbox could not start" in text


def test_usage_errors(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(tmp_path / "nope"), "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not a folder" in proc.stderr


def test_collect_rebuilds_grades_from_results_graded_elsewhere(graded, tmp_path):
    """One CI job per submission, then `python -m autograder collect OUT` (docs/class-scale.md)."""
    _, out, _ = graded
    for student in ("alice", "erin"):
        (tmp_path / student).mkdir()
        shutil.copy(out / "students" / student / "results.json", tmp_path / student / "results.json")
    proc = subprocess.run([sys.executable, "-m", "autograder", "collect", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert totals(tmp_path) == {s: json.loads((out / "students" / s / "results.json").read_text())["score"]
                                for s in ("alice", "erin")}
    assert json.loads((tmp_path / "summary.json").read_text())["students"] == 2


# ---- names a student may choose ----------------------------------------------

ODD_NAMES = ["alice", "grades.csv", "summary.md", "summary.json", "scores.png", "changes.csv", "students.csv",
             "students", "Bob", "bob", "BOB", "x" * 240, "josé", "ｇｒａｄｅｓ.csv", "a\nb", "=HYPERLINK(1)",
             "bob-0123456789abcdef", "con", "-rf", " ", "résumé\u202e"]


def test_folder_names_are_safe_and_unique_whatever_the_student_name():
    from autograder.instructor import roster
    names = ODD_NAMES + ["Alice", "ALICE", "alice-" + roster.folder_name("Alice").rsplit("-", 1)[1], "..", "."]
    folders = [roster.folder_name(n) for n in names]
    assert len({f.casefold() for f in folders}) == len(names)  # apart even on a case-insensitive file system
    for f in folders:
        assert f not in (".", "..") and "/" not in f and "\\" not in f and len(f) <= 64 and f.isascii()
        assert f == f.lower() and f[0].isalnum()
    assert roster.folder_name("alice") == "alice" and roster.folder_name("grades.csv") != "grades.csv"


def test_display_names_are_printable_and_unique(tmp_path):
    from autograder.instructor import roster
    raw = os.fsencode(str(tmp_path))
    for name in (b"\xff.py", b"\xfe.py", b"ok\x1b[31m.py", b"ok.py"):
        with open(os.path.join(raw, name), "w") as f:
            f.write("QUIZ_ANSWERS = {}\n")
    os.mkdir(tmp_path / "ok")
    found = [s for s, _ in roster.discover(str(tmp_path))]
    assert len(set(found)) == len(found) == 5
    assert all(s.isprintable() for s in found) and "ok" in found and "ok.py" in found


@pytest.fixture(scope="module")
def odd_class(tmp_path_factory):
    """A class whose file names collide with the batch's own outputs, each other (case), or are odd."""
    subs = tmp_path_factory.mktemp("odd_class")
    out = tmp_path_factory.mktemp("odd_out")
    stub = open(os.path.join(SUBMISSIONS, "stub.py"), encoding="utf-8").read()
    for name in ODD_NAMES:
        if name == "students":
            (subs / name).mkdir()
            (subs / name / "work.py").write_text(stub, encoding="utf-8")
        else:
            (subs / (name + ".py")).write_text(stub, encoding="utf-8")
    shutil.copy(REFERENCE, subs / "alice.py")
    with open(os.path.join(os.fsencode(str(subs)), b"undecodable\xff.py"), "w", encoding="utf-8") as f:
        f.write(stub)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(subs), "--out", str(out), "--workers", "2",
                           "--only", "quiz", "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    return subs, out, proc


def test_odd_names_never_collide_with_outputs_or_each_other(odd_class):
    subs, out, proc = odd_class
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    found = batch.discover(str(subs))
    assert len(found) == len(ODD_NAMES) + 1
    assert sorted(os.listdir(out)) == ["grades.csv", "scores.png", "students", "students.csv", "summary.json",
                                       "summary.md"]
    rows = read_csv(out / "grades.csv")
    assert len(rows) == len(found)
    top = sum(c.points for c in runner_checks(["quiz"]))
    by_name = {r["student"]: r for r in rows}
    assert float(by_name["alice"]["total"]) == top and float(by_name["Bob"]["total"]) == 0
    assert "'=HYPERLINK(1)" in by_name  # never a formula in a spreadsheet
    mapping = read_csv(out / "students.csv")
    assert len({m["folder"] for m in mapping}) == len(found)
    for m in mapping:  # each folder holds exactly its student's results
        data = json.loads((out / m["folder"] / "results.json").read_text(encoding="utf-8"))
        assert batch.csv_cell(data["extra_data"]["bnlab"]["student"]) == m["student"]
    assert len(os.listdir(out / "students")) == len(found)


def test_odd_names_resume_and_regrade(odd_class):
    subs, out, _ = odd_class
    before = (out / "grades.csv").read_text(encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(subs), "--out", str(out), "--workers", "2",
                           "--only", "quiz", "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(ODD_NAMES) + 1} already graded" in proc.stdout and "to grade" not in proc.stdout
    assert (out / "grades.csv").read_text(encoding="utf-8") == before
    one = subs / "Bob.py"  # Bob (not bob, not BOB) finally did the quiz
    shutil.copy(REFERENCE, one)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(subs), "--out", str(out), "--workers", "2",
                           "--only", "quiz", "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "1 to grade" in proc.stdout
    totals_now = {r["student"]: float(r["total"]) for r in read_csv(out / "grades.csv")}
    assert totals_now["Bob"] > 0 and totals_now["bob"] == 0 and totals_now["BOB"] == 0
    assert [r["student"] for r in read_csv(out / "changes.csv")] == ["Bob"]


def test_results_of_another_name_in_a_folder_are_not_taken_for_a_students(tmp_path):
    """A results.json that names someone else (a hand-copied folder) is not this student's: graded again."""
    folder = tmp_path / "students" / "alice"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"score": 9, "tests": [],
                                                     "extra_data": {"bnlab": {"student": "mallory"}}}))
    assert batch.load_results(str(tmp_path), "alice") is None
    assert batch.load_results(str(tmp_path), "mallory") is None  # mallory's folder is students/mallory


def runner_checks(only):
    from autograder.core import runner
    return runner.selected_checks(True, only)


def test_no_sandbox_is_a_zero_row_that_says_so(monkeypatch):
    """Fail closed in a batch too: no student code ran; the row says why; the next run tries again."""
    from autograder.sandbox import NoSandbox

    def refused(*args, **kwargs):
        raise NoSandbox("the private file system could not be built (the platform refused)")
    monkeypatch.setattr(batch, "grade_submission", refused)
    _, data, _, err = batch.grade_job("zed", "nowhere.py", {"include_hidden": True, "only": ["quiz"]})
    assert err.startswith("no sandbox (") and data["score"] == 0
    assert all("not graded: no sandbox" in t["output"] for t in data["tests"])

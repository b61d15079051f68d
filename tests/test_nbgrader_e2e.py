"""End to end: real nbgrader grades a temporary course as the CLI does, without any kernel.

A temporary copy of the course (``tests/nbgrader_fixtures/course.py``) goes through
the commands of docs/instructors.md, run from the course root with the venv's
``nbgrader`` and a PATH that does NOT hold the venv (nbgrader calls ``alembic``
by bare name; ``nbgrader_config.py`` must make that work):

    nbgrader generate_assignment bn_resnet_densenet --force
    (submissions placed in gradebook/submitted/<student>/bn_resnet_densenet/)
    nbgrader autograde bn_resnet_densenet
    nbgrader generate_feedback bn_resnet_densenet
    nbgrader export

Autograde runs no kernel: ``GradeInSandbox`` (autograder/nbgrader_autograde.py)
grades each submitted folder once through the sandbox, as the CLI does.

Students: the reference, the untouched release, five wrong submissions built
from the variant catalogue (``tests/variants_*.py``), each also carrying one of
nbgrader's known traps, and two attackers:

- ``wrong_batch_norm`` tampers: deletes a failing public test cell, rewrites a
  failing hidden test cell to ``pass`` with 10 points, and hands in its own
  ``autograder/`` and ``bnlab_public/notebook.py`` that pass everything;
- ``wrong_BatchNorm``'s correct Residual writes to stderr and triggers a PyTorch
  UserWarning on every forward;
- ``wrong_DenseBlock``'s transition block waits forever (a sleeping loop) in eval mode;
- ``wrong_quiz`` answers q3 wrongly (its feedback must not give the key away);
- ``attack_modules`` (issue 11): the untouched release with a first code cell in
  each notebook that imports the quiz key from the hidden package, prints it,
  puts a module whose ``check`` always passes into ``sys.modules`` under the
  names the test cells import, and writes a marker file into the course folder;
- ``attack_transformer``: the same, but an IPython input transformer rewrites
  every later cell's ``check(...)`` call into a pass line.

Meanwhile ``python -m autograder grade-batch <copies of the submitted folders> --out OUT``
grades the same folders (same probe timeout): nbgrader's door runs ``grade`` once per student,
the CLI's class door grades them all in one process, and both must agree. Asserted: nbgrader's points equal
the CLI's check by check (test cells map to checks through their source), the
exported totals equal the CLI's totals, the traps and attacks changed nothing,
no student code ran outside the sandbox, and the feedback files show check
names, points, public messages, hidden checks' scores only (the default
hidden-feedback setting) and no hidden test source and no quiz key. The wall
times go to stdout (``pytest -s``) and to ``<tmp>/timings.json``.
"""
import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT
from nbgrader_fixtures import course

import variants_BatchNorm
import variants_DenseBlock
import variants_Residual
import variants_batch_norm
import variants_quiz

ASSIGNMENT = course.ASSIGNMENT
PROBE_TIMEOUT = 15     # seconds per probe, nbgrader and CLI alike (an infinite loop costs this much; the
                       # slowest probe, a short training run, takes about 2 s on an idle machine)
CHECK_CALL = re.compile(r"check(?:_hidden)?\('([^']+)'\)")
VARIANTS = {v.id: v for m in (variants_batch_norm, variants_BatchNorm, variants_Residual, variants_DenseBlock,
                              variants_quiz) for v in m.WRONG + m.RIGHT}
MARKER = "STUDENT_CODE_RAN_OUTSIDE_THE_SANDBOX"   # a file the attackers write into the course folder

pytestmark = [pytest.mark.timeout(1800),
              pytest.mark.xdist_group("test_nbgrader_e2e")]   # the course is graded once, in one test process


# ---- the students ----------------------------------------------------------------

def cell(nb, grade_id):
    return next(c for c in nb["cells"] if course.grade_id(c) == grade_id)


def solution_cell_defining(nb, name):
    return next(c for c in nb["cells"] if course.is_solution(c) and re.search(rf"^(def|class) {name}\b",
                                                                            course.source_of(c), re.M))


def tampered(notebooks):
    """Delete a failing public test cell, make a failing hidden one `pass` for 10 points, lock nothing."""
    nb = notebooks["01_batch_norm.ipynb"]
    nb["cells"].remove(cell(nb, DELETED))
    forged = cell(nb, FORGED)
    forged["source"] = "print('all good')"
    forged["metadata"]["nbgrader"].update(points=10, locked=False)
    forged["metadata"]["editable"] = True
    return notebooks


DELETED = "test_batch_norm_train_output_normalised"
FORGED = "hidden_batch_norm_2"       # batch_norm.train_stats_2d (hidden_batch_norm_1 is from_scratch)
FAKE_GRADER = {  # handed in beside the notebooks; nbgrader must not let the kernel use them
    "autograder/__init__.py": "",
    "autograder/notebook.py": "def check(*ids):\n    print('pass', *ids)\n",
    "bnlab_public/notebook.py": "def check(*ids):\n    print('pass', *ids)\n",
}

NOISY = '''

import sys
import warnings

_Residual = Residual


class Residual(_Residual):
    """The same block, but every forward writes to stderr and triggers a PyTorch UserWarning."""

    def forward(self, X):
        print("debug: Residual.forward", tuple(X.shape), file=sys.stderr)
        torch.tensor(torch.zeros(1))   # UserWarning: To copy construct from a tensor ...
        warnings.warn("a warning of the student's own")
        return super().forward(X)
'''

# It waits, sleeping, rather than spinning: the timeout is what is tested here, and two doors spinning for
# two probes each burnt 60 s of CPU that the rest of the suite waited for. A loop that burns a core is
# tests/hostile/infinite_loop.py's.
LOOPING = '''

import time


class _Transition(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),
                                 nn.Conv2d(in_channels, out_channels, kernel_size=1),
                                 nn.AvgPool2d(kernel_size=2, stride=2))

    def forward(self, X):
        done = False
        while not done:          # bug: in eval mode nothing ever sets done
            time.sleep(0.05)
            done = self.training
        return self.net(X)


def transition_block(in_channels, out_channels):
    return _Transition(in_channels, out_channels)
'''


def with_code(notebooks, name, defines, code):
    target = solution_cell_defining(notebooks[name], defines)
    target["source"] = course.source_of(target) + code
    return notebooks


# The attack of issue 11, as a first code cell of every notebook. In a kernel with the grader on its path it
# printed the whole key and made every test cell pass (83/83 for the stubs).
STEAL_THE_KEY = '''# attack: read the quiz key from the grader's hidden package and print it
import sys, types
try:
    from autograder.hidden.quiz_key import KEY
    print("the key:", "".join(KEY[f"q{i}"] for i in range(1, len(KEY) + 1)), KEY)
except Exception as exc:
    print("no key here:", type(exc).__name__)
try:
    with open(MARKER_PATH, "w") as f:
        f.write("student code ran outside the sandbox")
except OSError:
    pass
'''
FORGE_MODULES = '''
# ... and make every test cell pass: a `check` that always passes, under the names the test cells import
fake = types.ModuleType("notebook")
fake.check = lambda *ids, **kwargs: print("pass", *ids)
fake.notebook = fake
for name in ("autograder", "autograder.notebook", "bnlab_public", "bnlab_public.notebook"):
    sys.modules[name] = fake
'''
FORGE_TRANSFORMER = '''
# ... and make every test cell pass: rewrite each later cell before IPython runs it
def forge(lines):
    return ["print('pass')\\n" if "check" in line or "import" in line else line for line in lines]
get_ipython().input_transformers_cleanup.append(forge)
'''


def attacked(notebooks, root, forgery):
    """Every notebook gets the attack as its first code cell (each notebook has its own kernel)."""
    source = STEAL_THE_KEY.replace("MARKER_PATH", repr(os.path.join(root, MARKER))) + forgery
    for name, nb in notebooks.items():
        first = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
        nb["cells"].insert(first, {"cell_type": "code", "execution_count": None, "id": "attack", "metadata": {},
                                   "outputs": [], "source": source})
    return notebooks


def students(root="/nonexistent"):
    """{student id: (notebooks, extra files)}."""
    v = VARIANTS
    return {
        "reference": (course.reference_notebooks(), {}),
        "untouched": (course.untouched_notebooks(), {}),
        "wrong_batch_norm": (tampered(course.variant_notebooks(v["batch_norm_unbiased_var"])), FAKE_GRADER),
        "wrong_BatchNorm": (with_code(course.variant_notebooks(v["BatchNorm_always_training"]),
                                      "02_resnet.ipynb", "Residual", NOISY), {}),
        "wrong_Residual": (course.variant_notebooks(v["Residual_no_final_relu"]), {}),
        "wrong_DenseBlock": (with_code(course.variant_notebooks(v["DenseBlock_cat_output_first"]),
                                       "03_densenet.ipynb", "transition_block", LOOPING), {}),
        "wrong_quiz": (course.variant_notebooks(v["quiz_wrong_answer"]), {}),
        "attack_modules": (attacked(course.untouched_notebooks(), root, FORGE_MODULES), {}),
        "attack_transformer": (attacked(course.untouched_notebooks(), root, FORGE_TRANSFORMER), {}),
    }


# ---- the two doors ----------------------------------------------------------------

def cli_grade(folders, out):
    """``python -m autograder grade-batch FOLDER --out OUT``, the CLI instructors and CI grade a class with
    (one grading process: the grader starts once; each submission still gets its own sandboxed worker).
    Returns {student: results.json's dict}."""
    from autograder.instructor import batch
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", folders, "--out", out, "--workers", "1",
                           "--no-progress", "--probe-timeout", str(PROBE_TIMEOUT)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = {s: batch.load_results(out, s) for s in sorted(os.listdir(folders))}
    assert all(r is not None and not batch.bnlab_extra(r)["error"] for r in reports.values()), proc.stdout
    return reports


def check_of_cell(source_folder):
    """{grade id: check id} from the source notebooks' test cells."""
    mapping = {}
    for name in course.notebook_names():
        for c in course.read(os.path.join(source_folder, name))["cells"]:
            meta = c["metadata"].get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                (mapping[meta["grade_id"]],) = CHECK_CALL.findall(course.source_of(c))
    return mapping


def gradebook_scores(root, student):
    """{grade id: (score, max score)} of one student's submission, from nbgrader's gradebook."""
    from nbgrader.api import Gradebook
    with Gradebook("sqlite:///" + os.path.join(root, "gradebook", "gradebook.db")) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        return {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}


def feedback_text(root, student):
    folder = os.path.join(root, "gradebook", "feedback", student, ASSIGNMENT)
    texts = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".html"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                texts[name] = f.read()
    return texts


def autograded(root, student, name):
    return course.read(os.path.join(root, "gradebook", "autograded", student, ASSIGNMENT, name))


# ---- the run ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    start = time.monotonic()
    timings = {}
    root = course.make_course(str(tmp_path_factory.mktemp("nbgrader_course") / "course"))
    venv_bin = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "BNLAB_", "NBGRADER"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and os.path.realpath(p) != os.path.realpath(venv_bin))
    env.update(BNLAB_PROBE_TIMEOUT=str(PROBE_TIMEOUT), OMP_NUM_THREADS="1")

    def nbgrader(*args):
        t = time.monotonic()
        proc = course.nbgrader(root, *args, env=env)
        timings[" ".join(args)] = round(time.monotonic() - t, 1)
        assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-5000:]}"
        return proc

    nbgrader("generate_assignment", ASSIGNMENT, "--force")
    roster = students(root)
    folders = {s: course.submit(root, s, nbs, extra) for s, (nbs, extra) in roster.items()}

    # The CLI grades the same folders on the other core while nbgrader works.
    reports, cli_errors = {}, []

    def run_cli():
        try:
            t = time.monotonic()
            for s, folder in folders.items():   # what the students handed in, before nbgrader touches anything
                shutil.copytree(folder, os.path.join(root, "cli", s))
            reports.update(cli_grade(os.path.join(root, "cli"), os.path.join(root, "cli-out")))
            timings["CLI, all students"] = round(time.monotonic() - t, 1)
        except BaseException as exc:  # reported by the test, not lost in the thread
            cli_errors.append(exc)

    thread = threading.Thread(target=run_cli, daemon=True)
    thread.start()
    autograde = nbgrader("autograde", ASSIGNMENT)
    with open(os.path.join(root, "..", "autograde.log"), "w", encoding="utf-8") as f:
        f.write(autograde.stderr)
    nbgrader("generate_feedback", ASSIGNMENT)
    nbgrader("export")
    thread.join(timeout=1200)
    assert not cli_errors, cli_errors
    assert set(reports) == set(roster)
    cli = {s: {t["name"]: t for t in report["tests"]} for s, report in reports.items()}
    timings["whole fixture"] = round(time.monotonic() - start, 1)
    with open(os.path.join(root, "..", "timings.json"), "w") as f:
        json.dump(timings, f, indent=1)
    print("\nwall times (s):", json.dumps(timings, indent=1))
    with open(os.path.join(root, "gradebook", "grades.csv"), newline="", encoding="utf-8") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    return dict(root=root, roster=roster, cli=cli, cli_reports=reports, exported=exported, timings=timings,
                log=autograde.stderr,
                nbgrader={s: gradebook_scores(root, s) for s in roster},
                checks=check_of_cell(os.path.join(root, "solutions", ASSIGNMENT)))


STUDENTS = ["reference", "untouched", "wrong_batch_norm", "wrong_BatchNorm", "wrong_Residual",
            "wrong_DenseBlock", "wrong_quiz"]
ATTACKERS = ["attack_modules", "attack_transformer"]


def test_roster_is_the_one_graded():
    assert sorted(students()) == sorted(STUDENTS + ATTACKERS)


@pytest.mark.parametrize("student", STUDENTS + ATTACKERS)
def test_nbgrader_points_equal_the_cli_check_by_check(graded, student):
    checks, cli, nb = graded["checks"], graded["cli"][student], graded["nbgrader"][student]
    assert set(nb) == set(checks), "every test cell of the source is graded, none added"
    assert sorted(checks.values()) == sorted(cli), "one test cell per check of the CLI's rubric"
    differ = {gid: (checks[gid], nb[gid], cli[checks[gid]]["score"]) for gid in nb
              if (nb[gid][0], nb[gid][1]) != (cli[checks[gid]]["score"], cli[checks[gid]]["max_score"])}
    assert not differ, f"{student}: (check, nbgrader (score, max), CLI score): {differ}"
    row = graded["exported"][student]
    total = sum(t["score"] for t in cli.values())
    assert float(row["score"]) == float(row["raw_score"]) == total
    assert float(row["max_score"]) == sum(t["max_score"] for t in cli.values())


def failed_checks(graded, student):
    return {name for name, t in graded["cli"][student].items() if t["status"] != "passed"}


def test_the_submissions_are_what_they_claim(graded):
    """Not a test that cannot fail: the reference passes all, the release nothing, each variant its piece."""
    cli = graded["cli"]
    assert not failed_checks(graded, "reference")
    for student in ["untouched"] + ATTACKERS:
        assert all(t["score"] == 0 for t in cli[student].values()), student
    pieces = {"wrong_batch_norm": "batch_norm.", "wrong_BatchNorm": "BatchNorm.", "wrong_Residual": "Residual.",
              "wrong_DenseBlock": "DenseBlock.", "wrong_quiz": "quiz."}
    for student, prefix in pieces.items():
        assert any(c.startswith(prefix) for c in failed_checks(graded, student)), student


def test_no_kernel_runs_and_the_attacks_gain_nothing(graded):
    """Issue 11: the attacks scored 83/83 and printed the key in a kernel; here no student code runs outside
    the sandbox (the marker file the attack cell writes never appears), and the stubs score 0 as with the CLI."""
    root = graded["root"]
    assert not os.path.exists(os.path.join(root, MARKER)), "student code ran in nbgrader's process or a kernel"
    for student in ATTACKERS:
        assert float(graded["exported"][student]["score"]) == 0, student
        for name in course.notebook_names():
            nb = autograded(root, student, name)
            code = [c for c in nb["cells"] if c["cell_type"] == "code"]
            assert all(c.get("execution_count") is None for c in code), "nothing was executed"
            attack = next(c for c in code if "quiz_key" in course.source_of(c))
            assert attack["outputs"] == [], "a non-test cell's outputs stay cleared"
    # the attack did run, in the sandbox's worker, which has no grader to import the key from
    assert "no key here: ModuleNotFoundError" in graded["cli_reports"]["attack_modules"]["output"]


def test_tampering_gains_nothing(graded):
    """A deleted test cell is put back, a rewritten one gets its source and points back, handed-in graders are ignored."""
    checks, nb = graded["checks"], graded["nbgrader"]["wrong_batch_norm"]
    for gid in (DELETED, FORGED):
        assert checks[gid] in failed_checks(graded, "wrong_batch_norm"), f"{gid}: the tamper must target a failing check"
        assert nb[gid][0] == 0, gid
    assert nb[FORGED][1] == graded["cli"]["wrong_batch_norm"][checks[FORGED]]["max_score"] != 10
    log = graded["log"]
    assert f"Missing grade cell {DELETED}" in log
    assert f"Attribute 'checksum' for cell {FORGED} has changed" in log
    assert f"Attribute 'points' for cell {FORGED} has changed" in log
    folder = os.path.join(graded["root"], "gradebook", "autograded", "wrong_batch_norm", ASSIGNMENT)
    assert not os.path.exists(os.path.join(folder, "autograder")), "CourseDirectory.ignore keeps it out"
    with open(os.path.join(folder, "bnlab_public", "notebook.py"), encoding="utf-8") as f:
        assert "def check(*ids, namespace=None)" in f.read(), "the instructor's copy overwrote the student's"


def test_test_cells_show_only_what_the_grader_computed(graded):
    """The Residual that writes to stderr and warns passes; test cells hold one check line (and one error
    output for a failure), nothing of the student's; other cells have no outputs at all."""
    nb, checks = graded["nbgrader"]["wrong_BatchNorm"], graded["checks"]
    residual = {gid: score for gid, score in nb.items() if checks[gid].startswith("Residual.")}
    assert residual and all(score == top for score, top in residual.values()), residual
    cli = graded["cli"]["wrong_BatchNorm"]
    for name in course.notebook_names():
        for c in autograded(graded["root"], "wrong_BatchNorm", name)["cells"]:
            gid = course.grade_id(c)
            if gid not in checks:
                assert not c.get("outputs"), f"{name}: a non-test cell has outputs"
                continue
            t = cli[checks[gid]]
            kinds = [(o["output_type"], o.get("name")) for o in c["outputs"]]
            assert kinds == [("stream", "stdout")] + ([] if t["status"] == "passed" else [("error", None)]), gid
            assert course.source_of({"source": c["outputs"][0]["text"]}).startswith(f"{'pass' if t['status'] == 'passed' else 'FAIL'}  {checks[gid]}  ")


def test_an_infinite_loop_costs_only_the_checks_it_hits(graded):
    nb, checks, cli = graded["nbgrader"]["wrong_DenseBlock"], graded["checks"], graded["cli"]["wrong_DenseBlock"]
    looped = {c for c, t in cli.items() if "timed out after" in t["output"]}
    # the block's own eval check, and the DenseNet shape table (which runs the student's blocks in eval mode)
    assert looped == {"transition_block.eval_and_gradients", "DenseBlock.densenet_table"}, looped
    assert all(nb[gid][0] == 0 for gid in nb if checks[gid] in looped)
    transition = {checks[gid]: score for gid, score in nb.items() if checks[gid].startswith("transition_block.")}
    assert transition["transition_block.eval_and_gradients"][0] == 0
    # after a check of a piece timed out, the piece's later checks are not run (they fail at once, saying so)
    not_run = {c for c, t in cli.items() if "timed out in an earlier check" in t["output"]}
    assert all(c.startswith(("transition_block.", "DenseBlock.")) for c in not_run), not_run
    assert all(score == top for c, (score, top) in transition.items() if c not in looped | not_run), transition
    instructor = json.dumps(autograded(graded["root"], "wrong_DenseBlock", "03_densenet.ipynb"))
    assert f"timed out after {PROBE_TIMEOUT:g} s" in instructor, "the autograded notebook says why"


HIDDEN_SOURCE = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "check_hidden", "autograder.notebook", "from autograder")


@pytest.mark.parametrize("student", STUDENTS + ATTACKERS)
def test_feedback_shows_results_but_no_hidden_source(graded, student):
    """Default hidden feedback ("score"): every check's line and points; messages of public checks only."""
    from autograder.core.report import HIDDEN_NOTE
    texts = feedback_text(graded["root"], student)
    assert sorted(texts) == [n.replace(".ipynb", ".html") for n in course.notebook_names()]
    text = "".join(texts.values())
    test_cells = [seg for seg in re.split(r'<div class="cell ', text) if "Grade cell:" in seg]
    assert len(test_cells) == len(graded["checks"])
    for marker in HIDDEN_SOURCE:  # (an attacker's own cells name the grader: only its test cells count)
        for seg in test_cells if student in ATTACKERS else [text]:
            assert marker not in seg, f"{student}: feedback contains {marker!r}"
    for seg in test_cells:
        assert "Traceback" not in seg and "Cell In" not in seg, f"{student}: a traceback quotes a test cell"
    plain = html.unescape(text)
    for check_id, t in graded["cli"][student].items():
        line = f"{'pass' if t['status'] == 'passed' else 'FAIL'}  {check_id}  {t['score']:g} / {t['max_score']:g}"
        assert line in plain, f"{student}: feedback lacks the line {line!r}"
        message = t["output"].split("\n", 1)[1] if "\n" in t["output"] else ""
        if t["status"] == "passed" or not message:
            continue
        if t["visibility"] == "visible":
            assert f"{line}  {message}" in plain, f"{student}: a public check's message is missing"
        else:
            assert f"{line}  {HIDDEN_NOTE}" in plain, f"{student}: {check_id} lacks the hidden note"
            assert f"{line}  {message}" not in plain, f"{student}: {check_id}'s hidden message shows"


def test_feedback_never_gives_the_quiz_key_away(graded):
    """No key string, and no "qN: <right letter>" pair unless it is the student's own right answer; for the
    attackers, in no file of their feedback folder at all."""
    from autograder.hidden.quiz_key import KEY
    from autograder.instructor.release import ANSWER_PAIR, readable_text
    key_string = "".join(KEY[f"q{i}"] for i in range(1, len(KEY) + 1))
    for student in STUDENTS + ATTACKERS:
        own = course.source_of(solution_cell_defining_quiz(graded["roster"][student][0]))
        answers = {q: a.upper() for q, a in re.findall(r'"(q\d+)":\s*"([A-Za-z]*)"', own)}  # the last one wins
        text = html.unescape(re.sub(r"<[^>]+>", "", "".join(feedback_text(graded["root"], student).values())))
        if answers != KEY:
            assert key_string not in re.sub(r"\s", "", text.upper()), student
        for q, letter in ANSWER_PAIR.findall(text):
            if KEY.get(q) == letter.upper():
                assert answers.get(q) == KEY[q], f"{student}: feedback reveals the answer to {q}"
    assert graded["cli"]["wrong_quiz"]["quiz.q3"]["status"] == "failed"
    for student in ATTACKERS:
        folder = os.path.join(graded["root"], "gradebook", "feedback", student)
        for where, _, names in os.walk(folder):
            for name in names:
                text = readable_text(os.path.join(where, name))
                assert key_string not in text and repr(KEY) not in text, name


def test_hidden_feedback_message_shows_the_hidden_messages(graded):
    """BNLAB_HIDDEN_FEEDBACK=message (here the preprocessor's flag) shows the hidden checks' messages too."""
    import nbformat
    from autograder.instructor.nbgrader_hooks import HideHiddenTests
    nb = nbformat.reads(json.dumps(autograded(graded["root"], "wrong_DenseBlock", "03_densenet.ipynb")), as_version=4)
    shown = {}
    for setting in ("score", "message"):
        out, _ = HideHiddenTests(hidden_feedback=setting).preprocess(nbformat.from_dict(nb), {})
        shown[setting] = json.dumps([c.get("outputs", []) for c in out.cells])
    timed_out = f"timed out after {PROBE_TIMEOUT:g} s"
    assert timed_out in shown["message"] and timed_out not in shown["score"]


def solution_cell_defining_quiz(notebooks):
    nb = notebooks["04_quiz.ipynb"]
    return next(c for c in nb["cells"] if course.is_solution(c) and "QUIZ_ANSWERS" in course.source_of(c))


# ---- the cross-check ----------------------------------------------------------------------

def forged_course(graded, tmp_path, student, grade_id):
    """A course folder sharing the run's sources and submissions, whose gradebook copy gives one grade full marks."""
    from nbgrader.api import Gradebook
    root = tmp_path / "forged"
    (root / "gradebook").mkdir(parents=True)
    os.symlink(os.path.join(graded["root"], "solutions"), root / "solutions")
    os.symlink(os.path.join(graded["root"], "gradebook", "submitted"), root / "gradebook" / "submitted")
    shutil.copy(os.path.join(graded["root"], "gradebook", "gradebook.db"), root / "gradebook" / "gradebook.db")
    notebook = next(n[:-len(".ipynb")] for n in course.notebook_names()
                    if any(course.grade_id(c) == grade_id for c in course.read(
                        os.path.join(graded["root"], "solutions", ASSIGNMENT, n))["cells"]))
    with Gradebook("sqlite:///" + str(root / "gradebook" / "gradebook.db")) as gb:
        grade = gb.find_grade(grade_id, notebook, ASSIGNMENT, student)
        grade.manual_score = grade.max_score
        gb.db.commit()
    return str(root)


def test_the_cross_check_agrees_on_the_attacks_and_finds_a_forged_gradebook(graded, tmp_path):
    """nbgrader-verify re-grades with the CLI: an attacker agrees; a gradebook edited by hand does not."""
    checks = graded["checks"]
    q3 = next(gid for gid, c in checks.items() if c == "quiz.q3")
    root = forged_course(graded, tmp_path, "untouched", q3)
    proc = subprocess.run([sys.executable, "-m", "autograder", "nbgrader-verify", ASSIGNMENT, "--root", root,
                           "--student", "untouched", "attack_modules", "--probe-timeout", str(PROBE_TIMEOUT)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    flagged = [line.strip() for line in proc.stdout.splitlines() if line.startswith("    ")]
    assert len(flagged) == 1 and flagged[0].startswith(f"{q3} (quiz.q3): gradebook 1 / 1, CLI 0 / 1"), proc.stdout
    top = sum(t["max_score"] for t in graded["cli"]["untouched"].values())
    assert f"attack_modules: gradebook 0, CLI 0 / {top:g}\n" in proc.stdout
    assert "1 of 2 submissions agree with the CLI; look at: untouched" in proc.stdout


def test_verify_compare_finds_each_kind_of_disagreement(graded):
    from autograder.instructor.nbgrader_verify import compare
    checks = graded["checks"]
    cli = {c: (t["score"], t["max_score"], "") for c, t in graded["cli"]["wrong_quiz"].items()}
    nb = dict(graded["nbgrader"]["wrong_quiz"])
    assert compare(nb, cli, checks) == []
    q1 = next(gid for gid, c in checks.items() if c == "quiz.q1")
    forged = dict(nb, **{q1: (0.0, 1.0)})
    assert compare(forged, cli, checks) == [f"{q1} (quiz.q1): gradebook 0 / 1, CLI 1 / 1"]
    del forged[q1]
    assert compare(forged, cli, checks) == [f"{q1} (quiz.q1): not in the gradebook"]

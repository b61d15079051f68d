"""A catalogue of hostile submissions (tests/hostile/), each graded through the real CLI
(``python -m autograder grade X --results r.json``) with its expected outcome asserted.

Most hostile files are added before ("top") or after ("bottom") the reference
solution, so that what they break is precise and what they do not touch must keep
its marks. Every run also proves: the CLI exits 0 whatever the submission does,
and the report stays under 1 MB. The gradings are independent processes, so the
``graded`` fixture runs them a few at a time; each test then reads its own report.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REFERENCE, ROOT, grade_path
from autograder.core import runner

pytestmark = pytest.mark.xdist_group("processes")   # one test process: sleepers of test_sandbox would show here

HOSTILE = os.path.join(ROOT, "tests", "hostile")
REPORT_LIMIT = 1_000_000
BN, TB = "batch_norm", "transition_block"
AT_ONCE = 3
FORGED_MARKER = "/tmp/bnlab-hostile-forged-wire-pwned"
WATCHED = ["/tmp/results.json", "/tmp/r.json", "/autograder/results/results.json", "/results.json",
           os.path.join(ROOT, "results.json")]


def ids_of(piece):
    return [c.id for c in runner.selected_checks(True) if c.piece == piece]


def catalogue():
    """name -> (where the hostile code goes, --only selection, extra CLI arguments)."""
    one_bn_and_tb = ids_of(BN)[:1] + [TB]  # for cases that cost a worker restart per check
    return {
        # time limits first: they measure wall time, the rest run beside them
        "never_returns": ("bottom", [], ()),                  # every check, default limits
        "sleep_under_timeout": ("bottom", [BN, "BatchNorm"], ("--time-limit", "5", "--probe-timeout", "600")),
        # forged evidence
        "redirected_training": ("bottom", ["BatchNorm", "training"], ()),
        "overwritten_accuracy": ("bottom", ["training"], ()),
        "watch_patched": ("bottom", [f"{BN}.from_scratch", "BatchNorm.from_scratch", f"{BN}.train_stats_2d", "quiz"], ()),
        "watch_disabled": ("bottom", [f"{BN}.from_scratch", "BatchNorm.from_scratch", f"{BN}.train_stats_2d", "quiz"],
                           ()),
        "trace_rewritten": ("bottom", ["Residual", "quiz"], ()),
        "forged_pipe": ("bottom", [f"{BN}.from_scratch", f"{BN}.train_stats_2d"], ("--probe-timeout", "10")),
        "watch_disabled_alias": ("bottom", [f"{BN}.from_scratch", "BatchNorm.from_scratch", f"{BN}.train_stats_2d",
                                            "quiz"], ()),
        "syntax_error": ("alone", [BN, TB], ()),
        "missing_import": ("top", [BN, TB], ()),
        "exception_at_import": ("top", [BN, TB], ()),
        "sys_exit_at_import": ("top", [BN, TB], ()),
        "os_exit_at_import": ("top", [BN, TB], ()),
        "keyboard_interrupt_at_import": ("top", [BN], ()),
        "sys_exit_in_function": ("bottom", [BN, TB], ()),
        "os_exit_in_function": ("bottom", one_bn_and_tb, ()),
        "infinite_loop": ("bottom", one_bn_and_tb, ("--probe-timeout", "5")),
        "huge_allocation": ("bottom", [BN, TB], ()),
        "nan_outputs": ("bottom", [BN, TB], ()),
        "lying_tensor": ("bottom", [BN, TB], ()),
        "monkeypatch": ("bottom", [BN], ()),
        "forged_wire": ("bottom", one_bn_and_tb, ()),
        "print_flood": ("bottom", [BN, TB], ()),
        "detached_child": ("bottom", [BN, TB], ()),
        "fake_results": ("bottom", [BN], ()),
        "walk_fs": ("bottom", ["quiz"], ()),
    }


def submission(name, place, folder):
    with open(os.path.join(HOSTILE, name + ".py"), encoding="utf-8") as f:
        hostile = f.read()
    with open(REFERENCE, encoding="utf-8") as f:
        reference = f.read()
    text = {"alone": hostile, "top": hostile + "\n" + reference, "bottom": reference + "\n\n" + hostile}[place]
    path = os.path.join(str(folder), name + ".py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class Graded:
    def __init__(self, name, place, only, extra, folder):
        path = submission(name, place, folder)
        self.results = os.path.join(str(folder), "results.json")
        self.junit = os.path.join(str(folder), "junit.xml")
        start = time.monotonic()
        self.proc = subprocess.run([sys.executable, "-m", "autograder", "grade", path, "--results", self.results,
                                    "--junit", self.junit, "--quiet", *(["--only", *only] if only else []), *extra],
                                   cwd=ROOT, capture_output=True, text=True, timeout=600)
        self.seconds = time.monotonic() - start
        self.report, self.tests = None, {}
        if os.path.exists(self.results):
            with open(self.results, encoding="utf-8") as f:
                self.report = json.load(f)
            self.tests = {t["name"]: t for t in self.report["tests"]}

    def check_seconds(self):
        """{check id: seconds the runner spent on it} (from the JUnit report)."""
        import xml.etree.ElementTree as ET
        return {c.get("name"): float(c.get("time")) for c in ET.parse(self.junit).getroot().iter("testcase")}

    def check(self):
        """What holds for every hostile submission; returns (report, {check id: test})."""
        assert self.proc.returncode == 0, self.proc.stderr[-3000:]
        assert os.path.getsize(self.results) < REPORT_LIMIT
        assert self.tests, "no check ran"
        return self.report, self.tests


def mtimes(paths):
    return {p: os.stat(p).st_mtime_ns if os.path.exists(p) else None for p in paths}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole catalogue, AT_ONCE at a time; also note the host's state before."""
    if os.path.exists(FORGED_MARKER):
        os.remove(FORGED_MARKER)
    before = {"sleepers": live_sleepers(), "watched": mtimes(WATCHED)}
    jobs = {name: (place, only, extra, tmp_path_factory.mktemp(name))
            for name, (place, only, extra) in catalogue().items()}
    with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
        futures = {name: pool.submit(Graded, name, *job) for name, job in jobs.items()}
        done = {name: f.result() for name, f in futures.items()}
    for name, g in done.items():  # shown with pytest -s
        print(f"hostile {name}: graded in {g.seconds:.1f} s ({AT_ONCE} at a time)")
    done["before"] = before
    return done


def of(tests, piece):
    found = {i: t for i, t in tests.items() if i == piece or i.startswith(piece + ".")}
    assert found, f"no {piece} check ran"
    return found


def all_fail(tests, *needles):
    for i, t in tests.items():
        assert t["score"] == 0 and t["status"] == "failed", (i, t["output"])
        assert any(n in t["output"] for n in needles), (i, t["output"], needles)


def all_pass(tests):
    for i, t in tests.items():
        assert t["score"] == t["max_score"] > 0, (i, t["output"])


def test_catalogue_is_complete():
    """Every file in tests/hostile/ is graded here, but the forged-wire workers (test_hostile_wire.py)."""
    from test_hostile_wire import ATTACKS
    names = sorted(n[:-3] for n in os.listdir(HOSTILE) if n.endswith(".py") and n[:-3] not in ATTACKS)
    tested = sorted(n[len("test_"):] for n in globals() if n.startswith("test_") and n[5:] in names)
    assert len(names) >= 12 and names == tested == sorted(catalogue())


# ---- loading goes wrong: every check fails, saying why ------------------------

def test_syntax_error(graded):
    _, tests = graded["syntax_error"].check()
    all_fail(tests, "SyntaxError")


def test_missing_import(graded):
    _, tests = graded["missing_import"].check()
    all_fail(tests, "bnlab_no_such_module")


def test_exception_at_import(graded):
    _, tests = graded["exception_at_import"].check()
    all_fail(tests, "boom while importing the submission")


def test_sys_exit_at_import(graded):
    _, tests = graded["sys_exit_at_import"].check()
    all_fail(tests, "SystemExit")


def test_os_exit_at_import(graded):
    _, tests = graded["os_exit_at_import"].check()
    all_fail(tests, "while loading your submission, the process running your code exited (status 0)")
    seconds = graded["os_exit_at_import"].seconds
    assert seconds < 90, f"{seconds:.0f} s: the worker was restarted for each check?"


# ---- one piece goes wrong: it scores zero, the rest keep their marks -----------

def test_keyboard_interrupt_at_import(graded):
    _, tests = graded["keyboard_interrupt_at_import"].check()
    all_fail(of(tests, BN), "interrupted (SIGINT)")


def test_sys_exit_in_function(graded):
    _, tests = graded["sys_exit_in_function"].check()
    all_fail(of(tests, BN), "SystemExit")
    all_pass(of(tests, TB))


def test_os_exit_in_function(graded):
    _, tests = graded["os_exit_in_function"].check()
    all_fail(of(tests, BN), "exited (status 3)")
    all_pass(of(tests, TB))  # graded by a fresh worker


def test_infinite_loop(graded):
    _, tests = graded["infinite_loop"].check()
    all_fail(of(tests, BN), "timed out after 5 s")
    all_pass(of(tests, TB))


def test_huge_allocation(graded):
    _, tests = graded["huge_allocation"].check()
    all_fail(of(tests, BN), "MemoryError", "can't allocate memory")
    all_pass(of(tests, TB))


def test_nan_outputs(graded):
    _, tests = graded["nan_outputs"].check()
    bn = of(tests, BN)
    failed = [t for t in bn.values() if t["score"] == 0]
    # only checks that do not judge values (shapes, detached statistics) may pass
    assert sum(t["score"] for t in bn.values()) <= 0.25 * sum(t["max_score"] for t in bn.values())
    assert sum("NaN" in t["output"] for t in failed) >= len(failed) / 2
    all_pass(of(tests, TB))


def test_lying_tensor(graded):
    _, tests = graded["lying_tensor"].check()
    bn = of(tests, BN)
    all_fail(bn, "")
    assert any("tensor subclass" in t["output"] for t in bn.values())
    all_pass(of(tests, TB))


def test_monkeypatch(graded, tmp_path):
    """The patches change nothing: same marks as the same mistake without them (and they are flagged:
    rebinding builtins and torch's functions)."""
    report, tests = graded["monkeypatch"].check()
    assert any("builtins" in f["what"] for f in tampering(report))
    control = tmp_path / "control.py"
    control.write_text(open(REFERENCE).read() + "\n\ndef batch_norm(is_training, X, gamma, beta, moving_mean, "
                       "moving_var, eps, momentum):\n    return X, moving_mean, moving_var\n")
    expected = grade_path(str(control), only=[BN])
    assert {i: t["score"] for i, t in tests.items()} == {i: r.score for i, r in expected.items()}
    assert sum(r.score for r in expected.values()) < sum(r.max_score for r in expected.values())


def test_forged_wire(graded):
    _, tests = graded["forged_wire"].check()
    all_fail(tests, "not plain data")
    assert not os.path.exists(FORGED_MARKER), "the grader unpickled code from the submission"


# ---- correct work that behaves badly keeps its marks ---------------------------

def test_print_flood(graded):
    report, tests = graded["print_flood"].check()
    all_pass(tests)
    assert "output truncated" in report["output"]


def live_sleepers():
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"987.65" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def test_detached_child(graded):
    _, tests = graded["detached_child"].check()
    all_pass(tests)
    assert not graded["before"]["sleepers"]
    assert not live_sleepers(), "a process started by the submission outlived grading"


# ---- the sandbox's boundaries ----------------------------------------------

def test_fake_results(graded):
    report, tests = graded["fake_results"].check()
    assert report["score"] < sum(t["max_score"] for t in tests.values())
    assert "pwned" not in tests
    assert mtimes(WATCHED) == graded["before"]["watched"], "the submission wrote where a report could go"


def test_walk_fs(graded):
    report, tests = graded["walk_fs"].check()
    assert "WALKED" in report["output"]
    assert "FOUND" not in report["output"], report["output"][:3000]
    all_fail({i: t for i, t in tests.items() if i.startswith("quiz.q")}, "")


# ---- forged evidence: no unearned points, and the submission is flagged ----------------------------

def tampering(report):
    """The report's findings; each says where (file, line) and what."""
    found = report.get("extra_data", {}).get("bnlab", {}).get("tampering") or []
    assert all(re.search(r"line \d+", f["where"]) and f["what"] for f in found), found
    return found


def flagged_zero(tests):
    """Every check here scored zero because of the flag, saying so."""
    for i, t in tests.items():
        assert t["score"] == 0 and "scored zero: this check relies on" in t["output"], (i, t["output"])
        assert "reaches for the grader's internals" in t["output"], (i, t["output"])


def test_redirected_training(graded):
    report, tests = graded["redirected_training"].check()
    assert any("train_probe" in f["what"] or "sys.modules" in f["what"] for f in tampering(report))
    assert "FLAGGED" in report["output"]
    all_fail(of(tests, "BatchNorm"), "not implemented yet")
    training = of(tests, "training")
    flagged_zero(training)
    # and without the flag, too: the grader recomputes the first loss with the student's (stub) BatchNorm
    assert all("Graded as if not flagged: failed" in t["output"] and "not implemented yet" in t["output"]
               for t in training.values())


def test_overwritten_accuracy(graded):
    report, tests = graded["overwritten_accuracy"].check()
    assert tampering(report)
    flagged_zero(of(tests, "training"))
    found = re.search(r"reaches (\d+\.\d)% test accuracy", tests["training.accuracy"]["output"])
    assert found and 12 <= float(found.group(1)) <= 35, tests["training.accuracy"]["output"]   # judge's ~21%


def watch_outcome(graded, name):
    report, tests = graded[name].check()
    assert any("dispatch" in f["what"] for f in tampering(report))
    scratch = {i: t for i, t in tests.items() if i.endswith(".from_scratch")}
    assert len(scratch) == 2
    flagged_zero(scratch)
    # the watch itself was not fooled either: it saw the kernel, or an output it never saw computed
    for i, t in scratch.items():
        assert "Graded as if not flagged: failed" in t["output"], (i, t["output"])
        assert "native_batch_norm" in t["output"] or "unobserved output" in t["output"], (i, t["output"])
    all_pass({i: t for i, t in tests.items() if i == f"{BN}.train_stats_2d" or i.startswith("quiz.")})


def test_watch_patched(graded):
    watch_outcome(graded, "watch_patched")


def test_watch_disabled(graded):
    watch_outcome(graded, "watch_disabled")


def test_forged_pipe(graded):
    """Answers written by the submission itself on the worker's answer pipe: the forged reply passes the
    watch (it says no kernel ran), so the flag on raw descriptors is what takes the point."""
    report, tests = graded["forged_pipe"].check()
    assert any("raw file descriptors" in f["what"] for f in tampering(report))
    scratch = {i: t for i, t in tests.items() if i.endswith(".from_scratch")}
    assert len(scratch) == 1
    flagged_zero(scratch)
    # and without the flag: the forged frame lacks the request's nonce, so it is refused, not believed
    assert all("Graded as if not flagged: failed" in t["output"] and "did not send for this request" in t["output"]
               for t in scratch.values()), scratch
    # (the other checks depend on when its thread puts the pipe back: a swallowed answer is a timeout)


def test_watch_disabled_alias(graded):
    """The same escape with no flagged name in the source: aliases and computed names. The watch itself is
    fooled here (the output was multiplied under it), so the flag is what takes the points."""
    report, tests = graded["watch_disabled_alias"].check()
    assert any("computed attribute name" in f["what"] for f in tampering(report))
    scratch = {i: t for i, t in tests.items() if i.endswith(".from_scratch")}
    assert len(scratch) == 2
    flagged_zero(scratch)
    all_pass({i: t for i, t in tests.items() if i == f"{BN}.train_stats_2d" or i.startswith("quiz.")})


def test_trace_rewritten(graded):
    report, tests = graded["trace_rewritten"].check()
    assert any("sys.modules" in f["what"] for f in tampering(report))
    residual = of(tests, "Residual")
    observed = {i: t for i, t in residual.items() if "scored zero: this check relies on" in t["output"]}
    assert {"Residual.values_identity", "Residual.values_projection", "Residual.resnet18_table"} <= set(observed)
    flagged_zero(observed)
    # what it keeps is what a shared batch norm really gets right (shapes, eval() runs): values, not observations
    assert all("relies on" not in t["output"] for i, t in residual.items() if i not in observed)
    all_pass({i: t for i, t in tests.items() if i.startswith("quiz.q")})


# ---- time limits that hold ---------------------------------------------------------------------------

def test_sleep_under_timeout(graded):
    g = graded["sleep_under_timeout"]
    _, tests = g.check()
    # each call sleeps 590 s, under the 600 s probe timeout: only the whole-run limit can stop it
    assert g.seconds < 120, f"{g.seconds:.0f} s for --time-limit 5"
    assert sum(g.check_seconds().values()) < 5 + 2, g.check_seconds()   # the checks end with the limit
    all_fail(tests, "time limit for the whole submission (5 s) ran out")


def test_never_returns(graded):
    from autograder.core import runner, student
    g = graded["never_returns"]
    _, tests = g.check()
    assert g.seconds < 120, f"{g.seconds:.0f} s at the default limits"
    bn = list(of(tests, BN).values())
    assert f"timed out after {student.PROBE_TIMEOUT_S:g} s" in bn[0]["output"]
    all_fail(dict(enumerate(bn[1:])), "not run: batch_norm timed out in an earlier check")
    module = list(of(tests, "BatchNorm").values())
    first = next(k for k, t in enumerate(module) if t["score"] == 0)   # the first that runs forward()
    assert f"timed out after {runner.SUSPECT_TIMEOUT_S:g} s" in module[first]["output"], module[first]
    all_fail(dict(enumerate(module[first + 1:])), "not run: BatchNorm timed out in an earlier check")
    # training runs in a worker of its own beside the others (course.OWN_WORKER_PIECES): it times out there,
    # at the same time, or is not run when BatchNorm hung first in the same worker
    all_fail(of(tests, "training"), "timed out")
    for piece in ("Residual", "DenseBlock", TB, "quiz"):
        all_pass(of(tests, piece))

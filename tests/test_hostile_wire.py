"""Hostile workers against the judge (tests/hostile/wire_*.py): each forges the answers to
batch_norm's calls (a pickle of a shared 60-level list, a DEFLATE bomb, a huge declared
tensor, deep nesting, half a frame, random bytes) or raises 48 MiB messages, again and
again. One judge process, its private memory capped at 2 GiB (``RLIMIT_DATA``), grades
them all through real sandboxed workers. Each attack must fail only the checks it
answered, fast, with a well-formed report, and the judge must stay under 1 GiB.

(The format's own refusals, frame by frame, are in tests/test_wire.py.)"""
import json
import os
import subprocess
import sys

import pytest

from conftest import REFERENCE, ROOT

HOSTILE = os.path.join(ROOT, "tests", "hostile")
BN_CHECKS = ["batch_norm.returns_triple", "batch_norm.train_output_normalised"]
ATTACKS = {  # file -> what each forged check's message must say
    "wire_shared_list": "not plain data",
    "wire_deflate_bomb": "not plain data",
    "wire_huge_tensor": "not plain data",
    "wire_deep_nesting": "not plain data",
    "wire_garbage": "not plain data",
    "wire_truncated": "exited",
    "wire_huge_messages": "RuntimeError",
}
PROBE_TIMEOUT = 30.0

JUDGE = r'''
import json, os, resource, sys, time
resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))
sys.path.insert(0, ROOT)
from autograder.core import report, runner
from autograder.core.student import SandboxStudent
paths, only, probe_timeout = json.loads(sys.argv[1])
checks = runner.selected_checks(True, only)
out = {}
for name, path in paths.items():
    start = time.monotonic()
    student = SandboxStudent(path, probe_timeout=probe_timeout)
    try:
        results, _ = runner.grade(student, checks)
    finally:
        student.close()
    data = json.dumps(report.gradescope(results, student.output()))
    out[name] = {"seconds": time.monotonic() - start, "report_bytes": len(data),
                 "checks": {r.id: [r.score, r.max_score, r.message] for r in results}}
out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("JUDGE" + json.dumps(out))
'''


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile_wire")
    with open(REFERENCE, encoding="utf-8") as f:
        reference = f.read()
    paths = {}
    for name in ATTACKS:
        with open(os.path.join(HOSTILE, name + ".py"), encoding="utf-8") as f:
            hostile = f.read()
        path = folder / (name + ".py")
        path.write_text(reference + "\n\n" + hostile, encoding="utf-8")
        paths[name] = str(path)
    args = json.dumps([paths, BN_CHECKS + ["quiz"], PROBE_TIMEOUT])
    proc = subprocess.run([sys.executable, "-c", JUDGE.replace("ROOT", repr(ROOT), 1), args], cwd=ROOT,
                          capture_output=True, text=True, timeout=1500, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("JUDGE"))
    return json.loads(line[len("JUDGE"):])


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_hostile_answer_fails_only_the_checks_it_answered(judged, name):
    got = judged[name]
    for check_id, (score, max_score, message) in got["checks"].items():
        if check_id in BN_CHECKS:
            assert score == 0 and ATTACKS[name] in message, (check_id, message[:300])
            assert len(message) < 3000, len(message)
        else:  # the quiz: answered honestly, full marks
            assert score == max_score, (check_id, message[:300])
    assert got["report_bytes"] < 1_000_000
    assert got["seconds"] < 4 * PROBE_TIMEOUT, got["seconds"]  # nothing waits for a probe timeout


def test_the_judge_stays_under_1_gib(judged):
    assert judged["maxrss_kib"] < 1 << 20, judged["maxrss_kib"]

"""The sandbox itself: what the worker can see and do, the fallbacks, the wire's type
checks, cleanup, and determinism of whole reports."""
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest
import torch

from conftest import REFERENCE, ROOT, grade_path
from autograder import sandbox

pytestmark = pytest.mark.xdist_group("processes")   # with test_hostile: both count leftover processes
from autograder.core.student import SandboxStudent, check_tensors, unwrap, Unsupported
from autograder.student_side import wire

AS_ROOT = os.geteuid() == 0

SPY = r'''
import json, os, resource, socket, sys
facts = {"uid": os.getuid(), "cwd": os.getcwd(), "path": sys.path, "root": sorted(os.listdir("/")),
         "grader_visible": os.path.exists(GRADER), "data_limit": resource.getrlimit(resource.RLIMIT_DATA)[0],
         "fds": sorted(int(f) for f in os.listdir("/proc/self/fd"))}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2).close()
    facts["network"] = True
except OSError:
    facts["network"] = False
for name, path in (("code_writable", "/sandbox/code/student_side/x.py"), ("tmp_writable", "/tmp/x")):
    try:
        open(path, "w").close()
        facts[name] = True
    except OSError:
        facts[name] = False
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
facts["new_user_ns"] = libc.unshare(0x10000000) == 0  # the way out of a chroot, if it were allowed
facts["init_traceable"] = os.access("/proc/1/mem", os.R_OK)
with open("/proc/1/cmdline", "rb") as f:
    facts["init_cmdline"] = f.read().decode("utf-8", "replace")
with open("/proc/self/mountinfo") as f:
    mounts = [line.split() for line in f]
facts["sys_mounts"] = [m[4] for m in mounts if m[4] == "/sys" or m[4].startswith("/sys/")]
facts["sys_writable"] = [m[4] for m in mounts if (m[4] == "/sys" or m[4].startswith("/sys/"))
                         and "ro" not in m[5].split(",")]
print("FACTS" + json.dumps(facts))
'''


def spy(tmp_path, extra=""):
    """Load a submission that reports what it sees; returns (facts, sandbox summary)."""
    path = tmp_path / "spy.py"
    path.write_text(open(REFERENCE).read() + f"\nGRADER = {os.path.join(ROOT, 'autograder')!r}\n" + SPY + extra)
    student = SandboxStudent(str(path))
    try:
        assert "batch_norm" in student.inventory()["defined"]
    finally:
        student.close()
    out = student.output()
    line = next(l for l in out.splitlines() if l.startswith("FACTS"))
    return json.loads(line[len("FACTS"):]), out.splitlines()[0]


@pytest.mark.skipif(not AS_ROOT, reason="the full box needs root (CI runs as root)")
def test_worker_is_boxed_as_root(tmp_path):
    facts, summary = spy(tmp_path)
    assert summary.startswith("sandbox: separate process as its own uid")
    assert "private file system" in summary and "no network" in summary and "PID namespace" in summary
    assert sandbox.UID_BASE <= facts["uid"] < sandbox.UID_BASE + sandbox.UID_COUNT
    assert facts["new_user_ns"] is False and facts["init_traceable"] is False
    assert facts["network"] is False
    assert facts["grader_visible"] is False
    allowed = {d.strip("/") for d in sandbox.SYSTEM_DIRS} | {"dev", "proc", "sys", "tmp", "sandbox"} | \
        {t.split("/")[1] for t in sandbox.python_trees()}
    assert set(facts["root"]) <= allowed
    assert facts["cwd"] == "/sandbox/work"
    assert facts["path"][0] == "/sandbox/code" and not any(p in ("", ".", ROOT) for p in facts["path"])
    assert facts["code_writable"] is False and facts["tmp_writable"] is True
    assert facts["data_limit"] == sandbox.MEMORY_BYTES
    assert len(facts["fds"]) <= 6  # stdio, the two pipes, the fd listdir itself opened
    assert facts["sys_mounts"] and not facts["sys_writable"]  # /sys and every submount read-only
    # the configuration came through a fd: nothing of it on the command line but the interpreter's own path
    # (which lies wherever the grader's checkout is, /tmp included)
    arguments = " ".join(facts["init_cmdline"].replace("\x00", " ").split()[1:])
    for secret in ("autograder", "bnlab-sandbox-", "/tmp/", "{"):
        assert secret not in arguments, facts["init_cmdline"]


def test_unsandboxed_fallback_without_namespaces_still_grades_and_says_so(tmp_path, monkeypatch):
    """Only when the instructor asked for it (--unsandboxed sets BNLAB_UNSANDBOXED)."""
    monkeypatch.setenv(sandbox.NO_NAMESPACES, "1")
    monkeypatch.setenv(sandbox.UNSANDBOXED, "1")
    facts, summary = spy(tmp_path)
    assert "NO private file system" in summary and "network NOT isolated" in summary
    if AS_ROOT:
        assert "as its own uid" in summary or "could not drop privileges" in summary
    assert facts["path"][0].endswith("/code") and ROOT not in facts["path"]
    assert facts["cwd"].endswith("/work") and facts["cwd"].startswith(tempfile.gettempdir())
    assert facts["data_limit"] == sandbox.MEMORY_BYTES


MARKER = r'''
with open(MARKER_PATH, "w") as f:
    f.write("student code ran")
'''


def test_without_a_private_file_system_no_student_code_runs(tmp_path, monkeypatch):
    """Fail closed: the jail cannot be built and --unsandboxed was not given."""
    monkeypatch.setenv(sandbox.NO_NAMESPACES, "1")
    monkeypatch.delenv(sandbox.UNSANDBOXED, raising=False)
    marker = tmp_path / "ran"
    os.chmod(tmp_path, 0o777)  # writable by the box's uid too, were it to run
    path = tmp_path / "marker.py"
    path.write_text(open(REFERENCE).read() + f"\nMARKER_PATH = {str(marker)!r}\n" + MARKER)
    private = tmp_path / "private"
    private.mkdir()
    monkeypatch.setattr(sandbox.launcher.tempfile, "tempdir", str(private))
    with pytest.raises(sandbox.NoSandbox, match="private file system could not be built"):
        SandboxStudent(str(path))
    assert not marker.exists()
    assert not os.listdir(private), "the private folder was left behind"


def test_cli_refuses_to_grade_without_a_sandbox_unless_told(tmp_path):
    env = dict(os.environ, **{sandbox.NO_NAMESPACES: "1"})
    env.pop(sandbox.UNSANDBOXED, None)
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "autograder", "grade", REFERENCE, "--quiet", "--results", str(out), "--only", "quiz"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3 and "not graded: no sandbox" in proc.stderr and "--unsandboxed" in proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(out.read_text())
    assert report["score"] == 0 and report["output"].startswith("not graded: no sandbox")
    assert report["tests"] and all("not graded: no sandbox" in t["output"] for t in report["tests"])
    proc = subprocess.run(cmd + ["--unsandboxed"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["score"] > 0
    assert "NO private file system" in report["output"]


@pytest.mark.skipif(not AS_ROOT, reason="own uids need root")
def test_boxes_alive_at_once_never_share_a_uid(tmp_path):
    """Within one grader, and across grading processes (a parallel batch): the uid lock holds."""
    path = tmp_path / "s.py"
    path.write_text("x = 1\n")
    boxes = [sandbox.Sandbox(str(path)) for _ in range(3)]
    try:
        uids = [b.ids[0] for b in boxes]
        assert len(set(uids)) == 3 and all(sandbox.UID_BASE <= u < sandbox.UID_BASE + sandbox.UID_COUNT
                                           for u in uids)
        code = ("import sys; sys.path.insert(0, %r); from autograder.sandbox import launcher; "
                "print(launcher.allocate_ids()[0][0])" % ROOT)
        other = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                   timeout=120).stdout)
        assert other not in uids
    finally:
        for b in boxes:
            b.cleanup()
    for uid in uids:  # released with its box (a grading in another test process may take it at once)
        path = os.path.join(sandbox.launcher.lock_folder(), str(uid))
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            assert os.getpid() not in lock_holders(path), f"uid {uid} is still locked by this process"
        finally:
            os.close(fd)


def lock_holders(path):
    """The pids holding a lock on ``path`` (/proc/locks: "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> ...")."""
    inode = str(os.stat(path).st_ino)
    with open("/proc/locks") as f:
        return {int(fields[4]) for fields in (line.split() for line in f)
                if len(fields) > 5 and fields[1] != "->" and fields[5].rsplit(":", 1)[-1] == inode}


def wait_for_sleepers(tag, seconds=20):
    deadline = time.monotonic() + seconds
    while not sleepers(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    return sleepers(tag)


def sleepers(tag):
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if tag in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


DETACH = '''
import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{tag}"])
    os._exit(0)
'''


def test_detached_children_die_without_namespaces_too(tmp_path, monkeypatch):
    """(With namespaces: tests/test_hostile.py::test_detached_child.) Here the subreaper sweeps."""
    monkeypatch.setenv(sandbox.NO_NAMESPACES, "1")
    monkeypatch.setenv(sandbox.UNSANDBOXED, "1")
    tag = "876.52"
    path = tmp_path / "detach.py"
    path.write_text(open(REFERENCE).read() + DETACH.format(tag=tag))
    student = SandboxStudent(str(path))
    student.inventory()
    assert wait_for_sleepers(tag.encode()), "the test's child did not start"
    student.close()
    assert not sleepers(tag.encode())


def test_grader_killed_mid_run_leaves_nothing_behind(tmp_path):
    """If the grader itself is SIGKILLed, the bootstrap (parent-death signal) still cleans up."""
    tag = "876.53"
    path = tmp_path / "detach_grader_killed.py"
    path.write_text(open(REFERENCE).read() + DETACH.format(tag=tag))
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from autograder.core.student import SandboxStudent; "
            f"s = SandboxStudent({str(path)!r}); s.inventory(); print('ready', flush=True); "
            f"import time; time.sleep(600)")
    private = tmp_path / "private"  # the grader's TMPDIR: where its sandbox folder goes
    private.mkdir()
    grader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, TMPDIR=str(private)))
    try:
        assert grader.stdout.readline().strip() == "ready"
        assert wait_for_sleepers(tag.encode())
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 20
    while sleepers(tag.encode()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sleepers(tag.encode())
    while os.listdir(private) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not os.listdir(private), "the private folder was left behind"


def test_worker_killed_mid_probe_is_restarted(tmp_path):
    path = tmp_path / "flaky.py"
    path.write_text(open(REFERENCE).read() + "\nimport os\n_ok = transition_block\n"
                    "def transition_block(*a):\n    os.kill(os.getpid(), 9)\n")
    student = SandboxStudent(str(path))
    try:
        with pytest.raises(Exception, match="killed"):
            student.probe("module", name="transition_block", ctor_args=(3, 2), ops=())
        assert student.probe("quiz")["q1"]  # a fresh worker answers
    finally:
        student.close()


# ---- what crosses the wire ----------------------------------------------------

def roundtrip(value):
    return wire.decode(wire.encode(value)[8:])


def test_wire_accepts_plain_data_only():
    assert roundtrip({"a": [1, 2.5, "x", None, (True,)]}) == {"a": [1, 2.5, "x", None, (True,)]}
    with pytest.raises(Exception):
        roundtrip(torch.nn.Parameter(torch.ones(2)))  # a Tensor subclass, even torch's own
    with pytest.raises(Exception):
        roundtrip({"x": Unsupported("an object")})


def test_unwrap_refuses_subclasses_in_tensor_slot():
    assert isinstance(unwrap({"__tensor__": 3, "requires_grad": False, "grad_fn": False, "device": "cpu"}),
                      Unsupported)


@pytest.mark.parametrize("make", [
    lambda: torch.ones(3).to_sparse(),
    lambda: torch.zeros(1).expand(1 << 27),
    lambda: torch.ones(2, device="meta"),
], ids=["sparse", "stride-0 giant", "meta"])
def test_odd_tensors_are_refused(make):
    with pytest.raises(ValueError):
        check_tensors({"x": [make()]})


def test_no_grading_path_runs_pytest():
    """The CLI grades without pytest; only the students' own door (pytest_plugin.py) may import it."""
    package = os.path.join(ROOT, "autograder")
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py") and name != "pytest_plugin.py":
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                assert "import pytest" not in text and "-m pytest" not in text, os.path.join(folder, name)


def test_folder_submission_conftest_and_tests_never_run(tmp_path):
    (tmp_path / "solution.py").write_text(open(REFERENCE).read())
    (tmp_path / "conftest.py").write_text("print('CONFTEST RAN')\n")
    (tmp_path / "test_mine.py").write_text("print('TEST FILE RAN')\n")
    student = SandboxStudent(str(tmp_path))
    try:
        assert "batch_norm" in student.inventory()["defined"]
    finally:
        student.close()
    assert "RAN" not in student.output()


# ---- determinism --------------------------------------------------------------

PIECES = ["batch_norm", "BatchNorm", "transition_block", "quiz"]


def cli_report(tmp_path, n):
    out = tmp_path / f"r{n}.json"
    subprocess.run([sys.executable, "-m", "autograder", "grade", REFERENCE, "--quiet", "--results", str(out),
                    "--only", *PIECES], cwd=ROOT, check=True, timeout=600)
    return json.loads(out.read_text())


def test_ten_gradings_give_identical_reports(tmp_path):
    """2 sandboxed CLI runs (whole results.json identical) + 8 in-process runs (same checks, scores,
    messages). results.json carries no timings."""
    first, second = cli_report(tmp_path, 1), cli_report(tmp_path, 2)
    assert first == second
    for _ in range(8):
        results = grade_path(REFERENCE, only=PIECES)
        assert [(r.id, r.score, r.passed, r.message) for r in results.values()] == \
            [(t["name"], t["score"], t["status"] == "passed", t["output"].partition("\n")[2])
             for t in first["tests"]]

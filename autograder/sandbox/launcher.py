"""The grader's side of the sandbox: the private folder, a uid of its own, starting and stopping
the bootstrap (``bootstrap.py``) and reading what it achieved. See the package's docstring."""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from .. import course

GIB = 1 << 30

# Defaults; ``Limits`` overrides them per sandbox.
MEMORY_BYTES = 4 * GIB          # torch alone takes ~0.8 GB of private memory
CPU_SECONDS = 1800              # the whole worker; wall-clock limits live in the grader
FILE_BYTES = 64 << 20           # largest file the submission may write
PROCESSES = 512                 # per box (each box has its own uid), threads included
OPEN_FILES = 1024
NO_NAMESPACES = "BNLAB_SANDBOX_NO_NAMESPACES"  # set: behave as on a platform that refuses unshare
UNSANDBOXED = course.SETTINGS["unsandboxed"].env  # set (by --unsandboxed): grade even where the jail cannot be built
UID_BASE = 2_000_000_000        # boxes run as uid (and gid) UID_BASE + k, 0 <= k < UID_COUNT (as root)
UID_COUNT = 4096
UID_LOCKS = "/run/bnlab-sandbox-uids"  # one lock file per uid in use (root only; falls back to the temp dir)
BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py")


class NoSandbox(RuntimeError):
    """The private file system could not be built and an unboxed run was not asked for."""


class Limits:
    def __init__(self, memory=MEMORY_BYTES, cpu=CPU_SECONDS, file_size=FILE_BYTES,
                 processes=PROCESSES, open_files=OPEN_FILES):
        self.memory, self.cpu, self.file_size = memory, cpu, file_size
        self.processes, self.open_files = processes, open_files

    def as_dict(self):
        return dict(vars(self))


def grader_package():
    """The ``autograder`` package's folder (hidden from the worker)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_trees():
    """Folders the worker's Python needs: the interpreter, the stdlib, site-packages."""
    import site
    trees = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    trees.update(p for p in site.getsitepackages() if os.path.isdir(p))
    trees = sorted(os.path.realpath(t) for t in trees if t and os.path.isdir(t))
    # keep only the outermost of nested trees
    return [t for t in trees if not any(t != o and t.startswith(o.rstrip("/") + "/") for o in trees)]


def interpreter():
    """sys.executable with its folder's symlinks resolved (a venv reached through a symlinked
    folder: only the real tree is in the jail), its own name kept (a venv's python finds
    its pyvenv.cfg through it)."""
    return os.path.join(os.path.realpath(os.path.dirname(sys.executable)), os.path.basename(sys.executable))


# ---- a uid of its own -------------------------------------------------------------

def lock_folder():
    """A folder only root can write, for the uid locks; None if none can be trusted."""
    for folder in (UID_LOCKS, os.path.join(tempfile.gettempdir(), "bnlab-sandbox-uids-0")):
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            st = os.lstat(folder)
        except OSError:
            continue
        if st.st_uid == 0 and not (st.st_mode & 0o022) and os.path.isdir(folder) and not os.path.islink(folder):
            return folder
    return None


def kill_processes_of(uid):
    """SIGKILL whatever still runs as ``uid`` (left by an earlier box that had no PID namespace)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
            if str(uid) in uids:
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, StopIteration, ValueError):
            pass


def allocate_ids():
    """((uid, gid), lock fd) of a free uid from the reserved range, or (None, None) when not root.

    The lock (``flock`` on ``<lock folder>/<uid>``) is held until ``release_ids``, or
    until this process dies: two sandboxes alive at once never share a uid."""
    if os.geteuid() != 0:
        return None, None
    folder = lock_folder()
    if folder is None:
        raise RuntimeError("no safe folder for the sandbox's uid locks")
    for uid in range(UID_BASE, UID_BASE + UID_COUNT):
        fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        kill_processes_of(uid)
        return (uid, uid), fd
    raise RuntimeError(f"all {UID_COUNT} sandbox uids are in use")


# ---- the private folder and the worker ---------------------------------------------

def copy_submission(path, dest):
    """Copy a .py / .ipynb file or a folder (symlinks kept as links, caches skipped)."""
    os.makedirs(dest, exist_ok=True)
    if os.path.isdir(path):
        target = os.path.join(dest, "submission")
        shutil.copytree(path, target, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", ".git", ".ipynb_checkpoints"))
        return target
    target = os.path.join(dest, os.path.basename(path))
    shutil.copy2(path, target)
    return target


def read_until_eof(fd, timeout):
    import select
    data, deadline = b"", time.monotonic() + timeout
    try:
        while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data


OUTPUT_HEAD = 12 * 1024    # per worker: what a submission printed first ...
OUTPUT_TAIL = 4 * 1024     # ... and last (where a crash shows)


class CappedReader(threading.Thread):
    """Drains a pipe; keeps its first ``head`` and last ``tail`` bytes and counts the rest."""

    def __init__(self, stream, head=OUTPUT_HEAD, tail=OUTPUT_TAIL):
        super().__init__(daemon=True)
        self.stream, self.head, self.tail = stream, head, tail
        self.first, self.last, self.total = bytearray(), bytearray(), 0
        self.start()

    def run(self):
        while True:
            chunk = self.stream.read(65536)
            if not chunk:
                break
            self.total += len(chunk)
            room = self.head - len(self.first)
            if room > 0:
                self.first += chunk[:room]
                chunk = chunk[room:]
            self.last = (self.last + chunk)[-self.tail:] if self.tail else bytearray()

    def text(self):
        first = self.first.decode("utf-8", "replace")
        if self.total <= len(self.first) + len(self.last):
            return first + self.last.decode("utf-8", "replace")
        return (first + f"\n... [output truncated: {self.total} bytes in all; the first {len(self.first)} "
                f"and the last {len(self.last)} are kept] ...\n" + self.last.decode("utf-8", "replace"))


class Sandbox:
    """One private folder for one submission; ``start`` launches a boxed worker there.

    ``require_jail``: refuse (``NoSandbox``) rather than run the worker without its
    private file system; default: unless ``BNLAB_UNSANDBOXED`` is set or ``isolate`` is off."""

    MOUNT_POINT = "/sandbox"  # where the private folder appears inside the jail

    def __init__(self, submission, limits=None, isolate=True, require_jail=None):
        self.limits = limits or Limits()
        self.isolate = isolate
        self.require_jail = isolate and not course.setting("unsandboxed") if require_jail is None else require_jail
        self.ids, self.id_lock = allocate_ids() if isolate else (None, None)
        self.root = tempfile.mkdtemp(prefix="bnlab-sandbox-")
        code, work = os.path.join(self.root, "code"), os.path.join(self.root, "work")
        os.mkdir(os.path.join(self.root, "jail"), 0o700)
        shutil.copytree(os.path.join(grader_package(), "student_side"), os.path.join(code, "student_side"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.submission = os.path.relpath(copy_submission(submission, work), self.root)
        self.status = {}
        if self.ids:  # the worker's user owns its work folder and can read its code, nothing else
            os.chmod(self.root, 0o711)
            for folder, _, files in os.walk(work):
                for name in [folder] + [os.path.join(folder, f) for f in files]:
                    os.lchown(name, *self.ids)
            for folder, _, files in os.walk(code):
                os.chmod(folder, 0o755)
                for f in files:
                    os.chmod(os.path.join(folder, f), 0o644)

    def start(self, env, pass_fds, stdout):
        """Launch bootstrap + worker; returns the bootstrap's Popen once the worker is exec'ed.

        The worker gets ``env`` plus BNLAB_SUBMISSION (its path as the worker
        sees it), HOME and TMPDIR, and inherits ``pass_fds``. Raises ``NoSandbox``
        (no worker ran) when the jail is required and could not be built."""
        status_r, status_w = os.pipe()
        source = os.open(BOOTSTRAP, os.O_RDONLY)
        config = tempfile.TemporaryFile()  # unlinked: read once by the bootstrap, through its fd
        cfg = {"env": env, "status_fd": status_w, "keep_fds": list(pass_fds), "isolate": self.isolate,
               "namespaces": not os.environ.get(NO_NAMESPACES), "require_jail": bool(self.require_jail),
               "root": self.root, "mount_point": self.MOUNT_POINT, "submission": self.submission,
               "python": interpreter(), "hide": [grader_package()], "python_trees": python_trees(),
               "ids": self.ids, "limits": self.limits.as_dict(), "close_fds": [source, config.fileno()]}
        config.write(json.dumps(cfg).encode())
        config.flush()
        os.lseek(config.fileno(), 0, os.SEEK_SET)
        cmd = [interpreter(), "-I", "-S", f"/dev/fd/{source}", str(config.fileno())]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                                    env={"PATH": os.defpath}, cwd=self.root,
                                    pass_fds=tuple(pass_fds) + (status_w, source, config.fileno()),
                                    start_new_session=True)
        finally:
            os.close(status_w)
            os.close(source)
            config.close()
        raw = read_until_eof(status_r, timeout=60)  # EOF once the worker is exec'ed (or the bootstrap failed)
        try:
            self.status = json.loads(raw.decode() or "{}") or {"error": "the sandbox did not start"}
        except ValueError:
            self.status = {"error": "the sandbox did not report"}
        if self.status.get("no_sandbox"):
            self.stop(proc)
            self.cleanup()
            raise NoSandbox(f"the private file system could not be built ({self.status['no_sandbox']})")
        return proc

    def stop(self, proc, grace=10.0, linger=0.0):
        """Kill the worker and everything it started; wait for the bootstrap.

        ``linger``: seconds to let a worker that was told to finish (its request
        pipe closed) exit by itself first."""
        try:
            proc.wait(timeout=linger)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)  # the bootstrap kills and reaps everything
                proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    def summary(self):
        """One line for the report: what isolation this platform allowed."""
        s = self.status
        if not self.isolate:
            return "sandbox: off (trusted run)"
        if not s:
            return "sandbox: no worker started"
        if s.get("no_sandbox"):
            return f"sandbox: none, so not graded (the private file system could not be built: {s['no_sandbox']})"
        if s.get("error"):
            return f"sandbox: {s['error']}"
        lim = self.limits
        parts = [f"separate process as {s.get('user')}",
                 "private file system" if s.get("jail") is True else f"NO private file system ({s.get('jail')})",
                 "no network" if s.get("net") is True else f"network NOT isolated ({s.get('net')})",
                 "PID namespace" if s.get("pid") is True else f"no PID namespace ({s.get('pid')})",
                 f"limits: memory {lim.memory / GIB:g} GiB, CPU {lim.cpu} s, files {lim.file_size >> 20} MiB"]
        return "sandbox: " + "; ".join(parts)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)
        if self.id_lock is not None:
            if self.ids:
                kill_processes_of(self.ids[0])
            os.close(self.id_lock)
            self.id_lock = None

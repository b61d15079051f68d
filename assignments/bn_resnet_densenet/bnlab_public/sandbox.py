"""How the student's worker process is launched and locked down (Linux).

The grader never runs submitted code itself. ``Sandbox.start`` runs this file as
a small stdlib-only *bootstrap* (``python -I -S sandbox.py CONFIG``), which puts
the worker in a box and then ``exec``s it. Each layer is applied when the
platform allows it; what was achieved is reported back (``Sandbox.summary``)
and printed in the report's output, so a weaker platform is visible, never silent.

Layers, outermost first:

1. A private folder holding a COPY of the submission (``work/``, the worker's
   cwd) and of ``autograder/student_side`` (``code/``, first on ``sys.path``; the
   submission's folder comes last). The worker runs ``python -s -P -u`` in an
   environment built from scratch: no user site, no cwd on the path, no
   PYTHONPATH, a fixed hash seed.
2. Namespaces (``unshare``): a new network namespace (no network: only a
   loopback that is down), a new PID namespace (a small init is its pid 1 and
   the worker its child; when the worker ends, init exits and the kernel kills
   every process left, double-forked and ``setsid``'d ones included), new IPC
   and UTS namespaces, and a new mount namespace in which the worker is ``chroot``'ed into a *jail*: a read-only
   tmpfs holding only the system folders (``/usr``, ``/etc`` ...), Python and its
   site-packages, fresh ``/tmp``, ``/dev/shm`` and ``/proc``, and ``/sandbox``
   (the private folder). The grader's own package (hidden checks, quiz key),
   the tests, the reference solution and the folder the report is written to
   are simply not there. Not root: the same through a user namespace, when the
   kernel allows unprivileged ones.
3. Privileges: as root, the worker drops to an unprivileged user (``nobody``)
   with no supplementary groups and ``PR_SET_NO_NEW_PRIVS``; the bootstrap and
   init are not dumpable (no ptrace). A chrooted process cannot create a user
   namespace, which closes the classic chroot escape.
4. Resource limits (``setrlimit``): memory (``RLIMIT_DATA``: private writable
   memory; unlike ``RLIMIT_AS`` it leaves room for the large address-space
   reservations of torch / CUDA), CPU seconds, file size, processes, open
   files, no core dumps.
5. Cleanup: the bootstrap is a child subreaper; when the worker ends, or the
   grader asks (SIGTERM), it kills the worker and every process left behind,
   then exits with the worker's status. The grader also ends the bootstrap's
   process group as a last resort.
"""
import ctypes
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

GIB = 1 << 30

# Defaults; ``Limits`` overrides them per sandbox.
MEMORY_BYTES = 4 * GIB          # torch alone takes ~0.8 GB of private memory
CPU_SECONDS = 1800              # the whole worker; wall-clock limits live in the grader
FILE_BYTES = 64 << 20           # largest file the submission may write
PROCESSES = 512                 # per user, threads included (only when running as its own user)
OPEN_FILES = 1024
SANDBOX_USER = "nobody"
NO_NAMESPACES = "BNLAB_SANDBOX_NO_NAMESPACES"  # set: behave as on a platform that refuses unshare

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")


class Limits:
    def __init__(self, memory=MEMORY_BYTES, cpu=CPU_SECONDS, file_size=FILE_BYTES,
                 processes=PROCESSES, open_files=OPEN_FILES):
        self.memory, self.cpu, self.file_size = memory, cpu, file_size
        self.processes, self.open_files = processes, open_files

    def as_dict(self):
        return dict(vars(self))


# ---- grader side ----------------------------------------------------------

def grader_package():
    return os.path.dirname(os.path.abspath(__file__))


def python_trees():
    """Folders the worker's Python needs: the interpreter, the stdlib, site-packages."""
    import site
    trees = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    trees.update(p for p in site.getsitepackages() if os.path.isdir(p))
    trees = sorted(os.path.realpath(t) for t in trees if t and os.path.isdir(t))
    # keep only the outermost of nested trees
    return [t for t in trees if not any(t != o and t.startswith(o.rstrip("/") + "/") for o in trees)]


def sandbox_ids():
    """(uid, gid) of the unprivileged user, or None when not root or no such user."""
    if os.geteuid() != 0:
        return None
    import pwd
    try:
        entry = pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


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


class Sandbox:
    """One private folder for one submission; ``start`` launches a boxed worker there."""

    MOUNT_POINT = "/sandbox"  # where the private folder appears inside the jail

    def __init__(self, submission, limits=None, isolate=True):
        self.limits = limits or Limits()
        self.isolate = isolate
        self.ids = sandbox_ids() if isolate else None
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
        sees it), HOME and TMPDIR, and inherits ``pass_fds``."""
        status_r, status_w = os.pipe()
        cfg = {"env": env, "status_fd": status_w, "keep_fds": list(pass_fds), "isolate": self.isolate,
               "namespaces": not os.environ.get(NO_NAMESPACES),
               "root": self.root, "mount_point": self.MOUNT_POINT, "submission": self.submission,
               "python": sys.executable, "hide": [grader_package()], "python_trees": python_trees(),
               "ids": self.ids, "limits": self.limits.as_dict()}
        cmd = [sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(cfg)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                                env={"PATH": os.defpath}, cwd=self.root,
                                pass_fds=tuple(pass_fds) + (status_w,), start_new_session=True)
        os.close(status_w)
        raw = read_until_eof(status_r, timeout=60)  # EOF once the worker is exec'ed (or the bootstrap failed)
        try:
            self.status = json.loads(raw.decode() or "{}") or {"error": "the sandbox did not start"}
        except ValueError:
            self.status = {"error": "the sandbox did not report"}
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


# ---- bootstrap side (runs as a script: stdlib only, before any student code) ----

libc = None


def _libc():
    global libc
    if libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
        libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
    return libc


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def prctl(option, value):
    _check(_libc().prctl(option, value, 0, 0, 0), f"prctl({option})")


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def unshare(flags):
    _check(_libc().unshare(flags), "unshare")


def enter_namespaces():
    """unshare what the platform allows. Returns {"net", "pid", "mnt": True or why not, "user_ns": bool}."""
    wanted = {"net": CLONE_NEWNET, "mnt": CLONE_NEWNS, "pid": CLONE_NEWPID}
    every = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if os.geteuid() != 0:  # an unprivileged user namespace, mapping our own ids only
        uid, gid = os.geteuid(), os.getegid()
        try:
            unshare(every | CLONE_NEWUSER)
        except OSError as exc:
            return dict({k: f"the platform refused ({exc.strerror})" for k in wanted}, user_ns=False)
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        return dict({k: True for k in wanted}, user_ns=True)
    try:
        unshare(every)
        return dict({k: True for k in wanted}, user_ns=False)
    except OSError:
        pass
    got = {"user_ns": False}
    for name, flag in wanted.items():
        try:
            unshare(flag)
            got[name] = True
        except OSError as exc:
            got[name] = f"the platform refused ({exc.strerror})"
    return got


def mount_flags_of(path):
    """The nosuid/nodev/noexec flags a read-only remount must keep (EPERM otherwise in a user namespace)."""
    f = os.statvfs(path).f_flag
    return (MS_NOSUID if f & os.ST_NOSUID else 0) | (MS_NODEV if f & os.ST_NODEV else 0) | \
           (MS_NOEXEC if f & os.ST_NOEXEC else 0)


def bind(source, target, readonly=True, recursive=True):
    """Recursive by default: in a user namespace a plain bind over locked submounts is refused."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | mount_flags_of(source))


def build_jail(cfg, fresh_proc):
    """Mount the jail's tree in <root>/jail; returns it. Only called in a new mount namespace."""
    root = cfg["root"]
    jail = os.path.join(root, "jail")
    inner = lambda p: jail + p  # noqa: E731
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", jail, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            os.symlink(os.readlink(d), inner(d))
        elif os.path.isdir(d):
            bind(d, inner(d))
    # a fresh /tmp before the Python trees: a virtual environment may itself live under /tmp
    os.makedirs(inner("/tmp"), exist_ok=True)
    mount("tmpfs", inner("/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=512m")
    for tree in cfg["python_trees"]:
        if not os.path.exists(inner(tree)):
            bind(tree, inner(tree))
    for hidden in cfg["hide"]:  # the grader's package, if it sits inside a tree we exposed
        if os.path.isdir(inner(hidden)):
            mount("tmpfs", inner(hidden), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
    os.makedirs(inner("/dev"))
    mount("tmpfs", inner("/dev"), "tmpfs", MS_NOSUID, "mode=0755,size=64k")
    for name in DEVICES + tuple(sorted(n for n in os.listdir("/dev") if n.startswith("nvidia"))):
        if os.path.exists("/dev/" + name):
            bind("/dev/" + name, inner("/dev/" + name), readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, inner("/dev/" + name))
    os.makedirs(inner("/dev/shm"), exist_ok=True)
    mount("tmpfs", inner("/dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m")
    os.makedirs(inner("/proc"))
    if fresh_proc:
        mount("proc", inner("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    else:
        bind("/proc", inner("/proc"), readonly=False)
    if os.path.isdir("/sys"):
        bind("/sys", inner("/sys"))
    point = inner(cfg["mount_point"])
    bind(os.path.join(root, "code"), point + "/code")
    bind(os.path.join(root, "work"), point + "/work", readonly=False)
    mount(None, jail, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")
    return jail


def reachable_by(path, uid, gid):
    """Can (uid, gid) without groups reach and read `path`? (permission bits only)."""
    path = os.path.realpath(path)
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        p = "/".join(parts[:i]) or "/"
        st = os.stat(p)
        need = 0o1 if stat.S_ISDIR(st.st_mode) and p != path else 0o4
        if st.st_uid == uid:
            ok = st.st_mode & (need << 6)
        elif st.st_gid == gid:
            ok = st.st_mode & (need << 3)
        else:
            ok = st.st_mode & need
        if not ok:
            return False
    return True


def set_limits(limits, own_user):
    import resource
    pairs = [(resource.RLIMIT_DATA, limits["memory"]), (resource.RLIMIT_CPU, limits["cpu"]),
             (resource.RLIMIT_FSIZE, limits["file_size"]), (resource.RLIMIT_CORE, 0),
             (resource.RLIMIT_NOFILE, limits["open_files"])]
    if own_user:
        pairs.append((resource.RLIMIT_NPROC, limits["processes"]))
    for which, value in pairs:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def worker_argv(python, code):
    """-s -P: no user site, no cwd on sys.path; not -I, whose -E would also drop
    PYTHONHASHSEED (the environment is built from scratch: no PYTHONPATH can get in)."""
    isolation = ["-s", "-P"] if sys.version_info >= (3, 11) else ["-I"]
    return [python, *isolation, "-u", "-c",
            f"import sys; sys.path.insert(0, {code!r}); from student_side.worker import main; main()"]


def prepare(cfg, ns):
    """In the sandbox's init: build the jail and chroot into it. Returns (status, argv, env, cwd)."""
    status = dict(ns, jail=ns["mnt"])
    base = cfg["root"]
    if cfg["isolate"] and ns["mnt"] is True:
        try:
            build_jail(cfg, fresh_proc=ns["pid"] is True)
            os.chroot(os.path.join(base, "jail"))
            base = cfg["mount_point"]
            status["jail"] = True
        except OSError as exc:
            status["jail"] = f"could not build it: {exc}"
    submission = os.path.join(base, cfg["submission"])
    cwd = submission if os.path.isdir(submission) else os.path.dirname(submission)
    env = dict(cfg["env"], BNLAB_SUBMISSION=submission, HOME=os.path.join(base, "work"), TMPDIR="/tmp")
    return status, worker_argv(cfg["python"], os.path.join(base, "code")), env, cwd


def become_worker(cfg, status, argv, env, cwd):
    """In the worker: limits, drop privileges, report, exec. Never returns."""
    ids = cfg["ids"]
    if ids and status["jail"] is not True:
        paths = [os.path.realpath(argv[0]), cwd] + cfg["python_trees"]
        if not all(reachable_by(p, *ids) for p in paths):
            ids = None
            status["user_note"] = "Python is not readable by the unprivileged user"
    set_limits(cfg["limits"], own_user=bool(ids))
    os.chdir(cwd)
    if ids:
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])
        status["user"] = f"{SANDBOX_USER} (uid {ids[0]})"
    elif os.geteuid() == 0 and not status.get("user_ns"):
        status["user"] = "root (could not drop privileges: " + status.get("user_note", "no unprivileged user") + ")"
    else:
        status["user"] = f"uid {os.getuid()}" + (" (not root: nothing to drop)" if not status.get("user_ns") else "")
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.write(cfg["status_fd"], json.dumps(status).encode())
    os.close(cfg["status_fd"])
    os.execve(argv[0], argv, env)


def run_init(cfg, ns, exit_w):
    """The sandbox's init (pid 1 of its PID namespace when there is one): start the worker,
    reap orphans, report the worker's wait status. When init exits, the kernel kills
    everything left in the namespace."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    status, argv, env, cwd = prepare(cfg, ns)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(exit_w)
            become_worker(cfg, status, argv, env, cwd)
        except BaseException as exc:  # report; never run the worker half-boxed
            report_failure(cfg, exc)
            os._exit(70)
    os.close(cfg["status_fd"])
    for fd in cfg["keep_fds"]:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while True:
        try:
            done, code = os.waitpid(-1, 0)
        except ChildProcessError:
            code = 0
            break
        if done == pid:
            break
    os.write(exit_w, str(code).encode())
    os._exit(0)


def report_failure(cfg, exc):
    try:
        os.write(cfg["status_fd"], json.dumps({"error": f"the sandbox could not start the worker: {exc}"}).encode())
    except OSError:
        pass


def remove_private_folder(root):
    """rmtree, but never through the jail: in our mount namespace it may still be mounted."""
    jail = os.path.join(root, "jail")
    if os.path.ismount(jail) and _libc().umount2(jail.encode(), 2) != 0:  # MNT_DETACH
        for name in ("work", "code"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        return
    shutil.rmtree(root, ignore_errors=True)


def direct_children():
    me = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            found.append(int(pid))
    return found


def sweep():
    """Kill and reap every descendant (orphans come to us: we are a child subreaper)."""
    for _ in range(1000):
        kids = direct_children()
        if not kids:
            break
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.01)
                    break
            except ChildProcessError:
                break


def bootstrap(cfg):
    """Outside the box, as the grader's user: namespaces, then init; wait, clean up, pass on the status."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the grader died: clean up
    state = {"init": None, "grader": os.getppid()}

    def terminate(signum, frame):
        if state["init"]:
            try:
                os.kill(state["init"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        sweep()
        if os.getppid() != state["grader"]:  # the grader died: nobody else will remove the private folder
            remove_private_folder(cfg["root"])
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    if not cfg["isolate"]:
        ns = {"net": "off", "pid": "off", "mnt": "off", "user_ns": False}
    elif not cfg["namespaces"]:
        ns = {"net": f"{NO_NAMESPACES} is set", "pid": f"{NO_NAMESPACES} is set",
              "mnt": f"{NO_NAMESPACES} is set", "user_ns": False}
    else:
        ns = enter_namespaces()
    prctl(PR_SET_DUMPABLE, 0)  # no ptrace into us or our init (same uid in a user namespace); exec resets it
    exit_r, exit_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(exit_r)
            run_init(cfg, ns, exit_w)
        except BaseException as exc:
            report_failure(cfg, exc)
        os._exit(70)
    state["init"] = pid
    os.close(exit_w)
    os.close(cfg["status_fd"])
    for fd in cfg["keep_fds"]:
        os.close(fd)
    with os.fdopen(exit_r, "rb") as f:
        raw = f.read()
    os.waitpid(pid, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sweep()
    code = int(raw or b"0")
    if raw and os.WIFSIGNALED(code):
        sig = os.WTERMSIG(code)  # die the same way, so the grader can say what happened
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(code) if raw and os.WIFEXITED(code) else 70)


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    try:
        bootstrap(config)
    except Exception as error:  # say why in the report, not with a traceback in the student's output
        report_failure(config, error)
        os._exit(70)

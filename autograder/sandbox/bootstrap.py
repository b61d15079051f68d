"""The sandbox's bootstrap: a stdlib-only program run before any student code, as
``python -I -S /dev/fd/N M`` (this file through descriptor N, its JSON configuration
through M: neither shows on a command line). It enters namespaces; its init builds the
jail and forks the worker, which drops to the box's uid and ``exec``s ``student_side.worker``."""
import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import stat
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38

GRADER_DIED = signal.SIGUSR1   # the bootstrap's parent-death signal (prctl PR_SET_PDEATHSIG)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")

@functools.lru_cache(maxsize=None)
def _libc():
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
    """The nosuid/nodev/noexec/atime flags a read-only remount must keep (EPERM otherwise in a user namespace)."""
    f = os.statvfs(path).f_flag
    pairs = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
             (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))
    return sum(ms for st, ms in pairs if f & st)


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
        if recursive:
            readonly_submounts(target)


def mount_points_under(top):
    """Mount points strictly below ``top`` in this mount namespace, outermost first."""
    with open("/proc/self/mountinfo") as f:
        points = {line.split()[4] for line in f}
    for code in ("\\040", "\\011", "\\012", "\\134"):  # mountinfo escapes these as octal
        points = {p.replace(code, chr(int(code[1:], 8))) for p in points}
    return sorted((p for p in points if p.startswith(top.rstrip("/") + "/")), key=len)


def readonly_submounts(top):
    """A bind remount read-only is not recursive: remount each submount under ``top``
    read-only too, or detach it (read-only or gone: if neither, the jail is not built)."""
    done = set()
    while True:  # mountinfo again each time: detaching a mount also detaches those below it
        todo = [p for p in mount_points_under(top) if p not in done]
        if not todo:
            return
        done.add(todo[0])
        try:
            mount(None, todo[0], None, MS_REMOUNT | MS_BIND | MS_RDONLY | mount_flags_of(todo[0]))
        except OSError:
            _check(_libc().umount2(todo[0].encode(), MNT_DETACH), f"umount {todo[0]}")


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
    parts = os.path.realpath(path).split("/")
    for i in range(1, len(parts) + 1):
        st = os.stat("/".join(parts[:i]) or "/")
        need = 0o1 if stat.S_ISDIR(st.st_mode) and i < len(parts) else 0o4
        shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
        if not st.st_mode & (need << shift):
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
    if ids and status["jail"] is not True:  # unjailed (an instructor's --unsandboxed run)
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
        status["user"] = "its own uid"   # not the number: reports stay identical whichever uid was free
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
    if cfg["require_jail"] and status["jail"] is not True:  # fail closed: no student code runs unjailed
        os.write(cfg["status_fd"], json.dumps({"no_sandbox": str(status["jail"])}).encode())
        os._exit(0)
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
    with contextlib.suppress(OSError):
        os.write(cfg["status_fd"], json.dumps({"error": f"the sandbox could not start the worker: {exc}"}).encode())


def remove_private_folder(root):
    """rmtree, but never through the jail: in our mount namespace it may still be mounted."""
    jail = os.path.join(root, "jail")
    if os.path.ismount(jail) and _libc().umount2(jail.encode(), MNT_DETACH) != 0:
        for name in ("work", "code"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        return
    shutil.rmtree(root, ignore_errors=True)


def direct_children():
    me, found = str(os.getpid()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[1] == me:
                    found.append(int(pid))
        except OSError:
            pass
    return found


def sweep():
    """Kill and reap every descendant (orphans come to us: we are a child subreaper)."""
    for _ in range(1000):
        kids = direct_children()
        if not kids:
            break
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.01)
                    break
            except ChildProcessError:
                break


def bootstrap(cfg):
    """Outside the box, as the grader's user: namespaces, then init; wait, clean up, pass on the status.
    SIGTERM: the grader stops this worker (and keeps the private folder for the next). GRADER_DIED:
    nobody else will remove the folder. Told apart by the signal: a grader killed while its threads
    run sends the parent-death signal while ``getppid()`` still names it."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, GRADER_DIED)
    state = {"init": None}

    def terminate(signum, frame):
        if state["init"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state["init"], signal.SIGKILL)
        sweep()
        if signum == GRADER_DIED:
            remove_private_folder(cfg["root"])
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(GRADER_DIED, terminate)   # stays set to the end: a grader dying as its worker ends still counts
    why = "off" if not cfg["isolate"] else None if cfg["namespaces"] else "BNLAB_SANDBOX_NO_NAMESPACES is set"
    ns = {"net": why, "pid": why, "mnt": why, "user_ns": False} if why else enter_namespaces()
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


def read_config(fd):
    """The configuration, read once from the inherited descriptor ``fd``; then close every
    descriptor that served only to start us."""
    with os.fdopen(fd, "rb", closefd=False) as f:
        cfg = json.loads(f.read().decode())
    for extra in cfg["close_fds"]:  # our source and this configuration: nothing below us inherits them
        os.close(extra)
    return cfg


if __name__ == "__main__":
    config = read_config(int(sys.argv[1]))
    try:
        bootstrap(config)
    except Exception as error:  # say why in the report, not with a traceback in the student's output
        report_failure(config, error)
        os._exit(70)

"""How the student's worker process is launched and locked down (Linux).

The grader never runs submitted code itself. ``Sandbox.start`` (``launcher.py``,
the grader's side) runs ``bootstrap.py``, a small stdlib-only program, as
``python -I -S /dev/fd/N M``: its source and its configuration (JSON) both come
through inherited file descriptors, so nothing of it (the grader's path, the
sandbox's folder) shows on any command line (``/proc/1/cmdline``). The bootstrap
puts the worker in a box and then ``exec``s it, and reports what it achieved
(``Sandbox.summary``, the first line of the report's output).

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
   and UTS namespaces, and a new mount namespace in which the worker is
   ``chroot``'ed into a *jail*: a read-only tmpfs holding only the system folders
   (``/usr``, ``/etc`` ...), Python and its site-packages, fresh ``/tmp``,
   ``/dev/shm`` and ``/proc``, ``/sys`` read-only with every submount, and
   ``/sandbox`` (the private folder). The grader's own package (hidden checks,
   quiz key), the tests, the reference solution and the folder the report is
   written to are simply not there. Not root: the same through a user
   namespace, when the kernel allows unprivileged ones.
   **Fails closed**: when the jail cannot be built, no worker starts and
   ``start`` raises ``NoSandbox``, unless the instructor asked for an unboxed run
   (``--unsandboxed``, which sets ``BNLAB_UNSANDBOXED``).
3. Privileges: as root, each box runs as its OWN unprivileged uid (and gid) from
   a reserved range (``UID_BASE``), held with a lock file for the box's life so
   that parallel graders never share one (processes, ``RLIMIT_NPROC``), with no
   supplementary groups and ``PR_SET_NO_NEW_PRIVS``; the bootstrap and init are
   not dumpable (no ptrace). A chrooted process cannot create a user namespace,
   which closes the classic chroot escape.
4. Resource limits (``setrlimit``): memory (``RLIMIT_DATA``: private writable
   memory; unlike ``RLIMIT_AS`` it leaves room for the large address-space
   reservations of torch / CUDA), CPU seconds, file size, processes, open
   files, no core dumps.
5. Cleanup: the bootstrap is a child subreaper; when the worker ends, or the
   grader asks (SIGTERM), it kills the worker and every process left behind,
   then exits with the worker's status. The grader also ends the bootstrap's
   process group as a last resort.
"""
from .bootstrap import DEVICES, SYSTEM_DIRS  # noqa: F401
from .launcher import (CappedReader, CPU_SECONDS, FILE_BYTES, GIB, MEMORY_BYTES, NO_NAMESPACES, OPEN_FILES,  # noqa: F401
                       PROCESSES, UID_BASE, UID_COUNT, UNSANDBOXED, Limits, NoSandbox, Sandbox, python_trees)

"""``python -m autograder grade SUBMISSION`` (one submission, the CI door) and ``rubric``.

``grade`` runs the public and hidden checks through ``runner.grade_submission``,
prints a table, and writes Gradescope's ``results.json`` (``--results``) and
JUnit XML (``--junit``). Exit status 0 whenever grading completed, whatever the
score; 2 for a usage error; 3 when it refused to grade because no sandbox could be built here.
"""
import os
import sys
import time

from .. import course


def add_arguments(parser, command):
    if command == "rubric":
        parser.add_argument("--public-only", action="store_true")
        return
    s = course.SETTINGS
    parser.add_argument("submission")
    parser.add_argument("--results", help="write Gradescope's results.json here")
    parser.add_argument("--junit", help="write JUnit XML here")
    parser.add_argument("--public-only", action="store_true", help="run only the public checks")
    parser.add_argument("--only", nargs="*", help="check ids or pieces to run")
    parser.add_argument("--in-process", action="store_true",
                        help="run the submission inside the grader's process (trusted code only; for benchmarks)")
    parser.add_argument("--probe-timeout", type=float,
                        help=f"{s['probe_timeout'].help} (default {s['probe_timeout'].default:g}, ${s['probe_timeout'].env})")
    parser.add_argument("--time-limit", type=float,
                        help=f"{s['time_limit'].help} (default {s['time_limit'].default:g}, ${s['time_limit'].env})")
    parser.add_argument("--quiet", action="store_true", help="do not print the table")
    parser.add_argument("--student-view", action="store_true",
                        help=f"write the table and reports as a student may see them: hidden checks per "
                             f"${s['hidden_feedback'].env} (default {s['hidden_feedback'].default}); without it they are "
                             f"the instructor's and show everything")
    parser.add_argument("--unsandboxed", action="store_true",
                        help=f"{s['unsandboxed'].help} (${s['unsandboxed'].env}=1)")
    parser.add_argument("--device", choices=s["device"].choices,
                        help=f"{s['device'].help} (default {s['device'].default}, ${s['device'].env})")


def run(args):
    if args.command == "rubric":
        return rubric(args)
    started = time.monotonic()      # --time-limit counts from here: starting the worker and loading included
    if not os.path.exists(args.submission):
        print(f"error: submission {args.submission!r} does not exist", file=sys.stderr)
        return 2
    if course.setting("device", args.device) == "cuda":   # without a GPU: a usage error, before grading
        from ..reference.training import DeviceError, choose_device   # imports torch: only on this path
        try:
            choose_device("cuda")
        except DeviceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from ..core import report, runner
    from ..sandbox import NoSandbox
    try:
        graded = runner.grade_submission(args.submission, include_hidden=not args.public_only, only=args.only,
                                         sandboxed=not args.in_process, probe_timeout=args.probe_timeout,
                                         time_limit=args.time_limit, device=args.device,
                                         unsandboxed=True if args.unsandboxed else None, started=started)
    except NoSandbox as exc:
        return refuse_without_sandbox(args, exc)
    tampering = graded.context.get("tampering")
    results = report.student_view(graded.results) if args.student_view else graded.results
    if not args.quiet:
        print(report.table(results))
        if tampering:
            print("FLAGGED: " + "; ".join(str(f) for f in tampering[:8]))
    if args.results:
        report.write_json(args.results, report.gradescope(results, graded.output, tampering=tampering))
    if args.junit:
        report.write_text(args.junit, report.junit(results))
    return 0


def refuse_without_sandbox(args, exc):
    """No private file system here: no student code ran; say so, write a zero report, exit 3."""
    print(f"error: not graded: no sandbox: {exc}. The submission could read the hidden checks and the quiz key; "
          "grade it on a platform that allows namespaces (root or unprivileged user namespaces), or pass "
          "--unsandboxed for trusted code.", file=sys.stderr)
    if args.results:
        from ..core import report
        from .batch import zero_report
        report.write_json(args.results, zero_report(f"no sandbox ({exc})", not args.public_only, args.only))
    return 3


def rubric(args):
    from ..core import runner
    checks = runner.selected_checks(not args.public_only)
    for c in checks:
        print(f"{c.id:<40} {c.piece:<17} {'hidden' if c.hidden else 'public':<7} {c.points:g}")
    print(f"{'total':<40} {'':<17} {'':<7} {sum(c.points for c in checks):g}")
    return 0

"""python -m autograder grade SUBMISSION [--results results.json] [--junit junit.xml]"""
import argparse
import os
import sys
import time


from .student import PROBE_TIMEOUT_S  # noqa: E402  (no torch import: the worker starts first)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Grade bnlab submissions.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one submission: a notebook, a folder of notebooks, or a .py file")
    g.add_argument("submission")
    g.add_argument("--results", help="write Gradescope's results.json here")
    g.add_argument("--junit", help="write JUnit XML here")
    g.add_argument("--public-only", action="store_true", help="run only the public checks")
    g.add_argument("--only", nargs="*", help="check ids or pieces to run")
    g.add_argument("--in-process", action="store_true",
                   help="run the submission inside the grader's process (trusted code only; for benchmarks)")
    g.add_argument("--probe-timeout", type=float, default=PROBE_TIMEOUT_S,
                   help=f"seconds one probe may take (default {PROBE_TIMEOUT_S:g})")
    g.add_argument("--time-limit", type=float, default=None,
                   help="hard limit in seconds for the whole submission, loading and the last probe included "
                        "(default: runner.WHOLE_RUN_LIMIT_S, 600)")
    g.add_argument("--quiet", action="store_true", help="do not print the table")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"],
                   help="where the training check trains (default: auto, the GPU when there is one)")
    r = sub.add_parser("rubric", help="print every check with its points")
    r.add_argument("--public-only", action="store_true")
    from .batch import add_grade_batch_arguments
    from .gradescope import add_gradescope_zip_arguments
    add_grade_batch_arguments(sub.add_parser("grade-batch", help="grade a folder of submissions in parallel"))
    add_gradescope_zip_arguments(sub.add_parser("gradescope-zip", help="build the Gradescope autograder zip"))
    v = sub.add_parser("nbgrader-verify",
                       help="re-grade nbgrader's submissions with the CLI; list checks whose points differ")
    v.add_argument("assignment", nargs="?", default="bn_resnet_densenet")
    v.add_argument("--student", nargs="*")
    v.add_argument("--root")
    v.add_argument("--probe-timeout", type=float)
    b = sub.add_parser("build-release", help="regenerate the test cells and the student release (runs nbgrader)")
    b.add_argument("--root", help="course directory (default: the repository root)")
    return parser


def cmd_grade(args):
    started = time.monotonic()      # --time-limit counts from here: starting the worker and loading included
    if not os.path.exists(args.submission):
        print(f"error: submission {args.submission!r} does not exist", file=sys.stderr)
        return 2
    if args.device:
        os.environ["BNLAB_DEVICE"] = args.device
        from .training_ref import DeviceError, choose_device
        try:
            choose_device()
        except DeviceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from .student import InProcessStudent, SandboxStudent
    student = InProcessStudent(args.submission) if args.in_process else \
        SandboxStudent(args.submission, probe_timeout=args.probe_timeout)
    try:
        from . import report, runner
        checks = runner.selected_checks(not args.public_only, args.only)
        limit = runner.WHOLE_RUN_LIMIT_S if args.time_limit is None else args.time_limit
        results, context = runner.grade(student, checks, time_limit=limit, started=started)
    finally:
        student.close()
    if not args.quiet:
        print(report.table(results))
        if context.get("tampering"):
            print("FLAGGED: " + "; ".join(str(f) for f in context["tampering"][:8]))
    if args.results:
        report.write_json(args.results, report.gradescope(results, student.output(),
                                                          tampering=context.get("tampering")))
    if args.junit:
        report.write_text(args.junit, report.junit(results))
    return 0


def cmd_rubric(args):
    from . import runner
    checks = runner.selected_checks(not args.public_only)
    for c in checks:
        print(f"{c.id:<40} {c.piece:<17} {'hidden' if c.hidden else 'public':<7} {c.points:g}")
    print(f"{'total':<40} {'':<17} {'':<7} {sum(c.points for c in checks):g}")
    return 0


def cmd_build_release(args):
    from . import release  # imports nbgrader: only on this path
    return release.run(args)


def cmd_grade_batch(args):
    from .batch import run_grade_batch
    return run_grade_batch(args)


def cmd_gradescope_zip(args):
    from .gradescope import run_gradescope_zip
    return run_gradescope_zip(args)


def cmd_nbgrader_verify(args):
    from . import nbgrader_verify  # instructor-only: not in the students' copy
    return nbgrader_verify.run(args)


def main(argv=None):
    args = build_parser().parse_args(argv)
    commands = {"grade": cmd_grade, "rubric": cmd_rubric, "build-release": cmd_build_release,
                "grade-batch": cmd_grade_batch, "gradescope-zip": cmd_gradescope_zip,
                "nbgrader-verify": cmd_nbgrader_verify}
    return commands[args.command](args)

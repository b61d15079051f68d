"""The command line: ``python -m autograder COMMAND ...``, every instructor and CI entry point.

    grade SUBMISSION [--results results.json] [--junit junit.xml]   one submission (the CI door)
    rubric                                                          every check with its points
    grade-batch SUBMISSIONS_DIR --out OUT_DIR                       a whole class, in parallel
    collect OUT_DIR                                                 grades.csv + class summary from results.json files
    gradescope-zip [OUT.zip]                                        the Gradescope autograder bundle
    gradescope-run                                                  what the bundle's run_autograder calls
    gradescope-fail REASON                                          its zero report when grading cannot happen
    actions-summary results.json [--out FILE]                       a GitHub Actions job summary
    nbgrader-verify [ASSIGNMENT]                                    nbgrader's gradebook against the CLI
    build-release                                                   test cells + the student release (nbgrader)

Each command's options are declared and handled by the module that does the
work (``add_arguments(parser)`` and ``run(args)``); defaults come from
``autograder/course.py``. Exit status: 0 when the command did its job
(whatever the score), 1 when it found a problem (nbgrader-verify, build-release),
2 for a usage error.
"""
import argparse
import importlib
import sys

from .. import course

COMMANDS = {  # name: (module in this package, help)
    "grade": ("grade", "grade one submission: a notebook, a folder of notebooks, or a .py file"),
    "rubric": ("grade", "print every check with its points"),
    "grade-batch": ("batch", "grade a folder of submissions in parallel"),
    "collect": ("batch", "rebuild grades.csv and the class summary from OUT_DIR/*/results.json"),
    "gradescope-zip": ("gradescope", "build the Gradescope autograder zip"),
    "gradescope-run": ("gradescope", "grade $BNLAB_AUTOGRADER_ROOT/submission (what run_autograder calls)"),
    "gradescope-fail": ("gradescope", "write a zero report that says REASON (needs no torch; run_autograder's fallback)"),
    "actions-summary": ("actions_summary", "render a results.json as a Markdown score table"),
    "nbgrader-verify": ("nbgrader_verify", "re-grade nbgrader's submissions with the CLI; list checks whose points differ"),
    "build-release": ("release", "regenerate the test cells and the student release (runs nbgrader)"),
}


def command_module(name):
    return importlib.import_module(f"{__package__}.{COMMANDS[name][0]}")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Grade bnlab submissions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        command_module(name).add_arguments(sub.add_parser(name, help=text, description=text), name)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return command_module(args.command).run(args)
    except course.SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

"""Cross-check nbgrader's gradebook against the CLI, check by check.

    python -m autograder nbgrader-verify [ASSIGNMENT] [--student ID ...] [--root ROOT]

``nbgrader autograde`` with the course's ``nbgrader_config.py`` already grades
through the CLI's path (``GradeInSandbox``, autograder/nbgrader_autograde.py): no
kernel runs, so nothing a student writes can change what the gradebook records.
This cross-check catches what is left: a gradebook written by an nbgrader that was
not configured so (another config, an older course folder: test cells run in the
student's kernel), grades edited by hand, or grades from an older grader. It
re-grades each submitted folder (``gradebook/submitted/<student>/<assignment>/``)
with the CLI's code path (a sandboxed worker per student, the grader in this
process, as ``python -m autograder grade``), maps each nbgrader test cell to its
check through the source notebooks' test cells, and lists every check whose
gradebook points differ from the CLI's. Exit status 1 if any differ.

The probe timeout is ``BNLAB_PROBE_TIMEOUT`` (as for autograde; default 30 s).
A differing check is a reason to look at that student's autograded notebook,
not proof of cheating. One legitimate cause: a missing notebook scores zero in
nbgrader even when another notebook defines its piece (the CLI grades the folder).
"""
import json
import os
import re
import sys

from .. import course

ASSIGNMENT = course.ASSIGNMENT
CHECK_CALL = re.compile(r"check(?:_hidden)?\('([^']+)'\)")


def default_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check_of_cell(source_folder):
    """{nbgrader grade id: check id} from the source notebooks' test cells."""
    mapping = {}
    for name in sorted(os.listdir(source_folder)):
        if not name.endswith(".ipynb"):
            continue
        with open(os.path.join(source_folder, name), encoding="utf-8") as f:
            nb = json.load(f)
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                ids = CHECK_CALL.findall(source)
                if len(ids) == 1:
                    mapping[meta["grade_id"]] = ids[0]
    return mapping


def gradebook_scores(db_url, assignment, student):
    """{grade id: (score, max score)} of one submission, or None when nbgrader has none."""
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(db_url) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        return {g.name: (float(g.score), float(g.max_score)) for nb in submission.notebooks for g in nb.grades}


def cli_scores(folder, probe_timeout):
    """{check id: (score, max score, message)}: the CLI's grading of one submitted folder."""
    from ..core import runner
    graded = runner.grade_submission(folder, include_hidden=True, probe_timeout=probe_timeout)
    return {r.id: (r.score, r.max_score, r.message) for r in graded.results}


def compare(nbgrader, cli, mapping):
    """Lines naming each disagreement between nbgrader's points and the CLI's; [] when they agree."""
    problems = []
    for grade_id in sorted(set(nbgrader) | set(mapping)):
        check_id = mapping.get(grade_id)
        if check_id is None:
            problems.append(f"{grade_id}: a gradebook cell that calls no known check")
            continue
        if grade_id not in nbgrader:
            problems.append(f"{grade_id} ({check_id}): not in the gradebook")
            continue
        if check_id not in cli:
            problems.append(f"{grade_id} ({check_id}): not a check of this grader")
            continue
        got, top = nbgrader[grade_id]
        want, want_top, message = cli[check_id]
        if (got, top) != (want, want_top):
            problems.append(f"{grade_id} ({check_id}): gradebook {got:g} / {top:g}, CLI {want:g} / {want_top:g}"
                            + (f" ({message})" if message else ""))
    graded = set(mapping.values())
    problems += [f"{c}: a check with no test cell" for c in sorted(set(cli) - graded)]
    return problems


def verify(root, assignment=ASSIGNMENT, students=None, probe_timeout=None, out=print):
    """Compare every (or the named) student; returns {student: [problems]}."""
    submitted = os.path.join(root, "gradebook", "submitted")
    db_url = "sqlite:///" + os.path.join(root, "gradebook", "gradebook.db")
    mapping = check_of_cell(os.path.join(root, "solutions", assignment))
    if students is None:
        students = sorted(s for s in os.listdir(submitted) if os.path.isdir(os.path.join(submitted, s, assignment))) \
            if os.path.isdir(submitted) else []
    report = {}
    for student in students:
        folder = os.path.join(submitted, student, assignment)
        nbgrader = gradebook_scores(db_url, assignment, student)
        if not os.path.isdir(folder):
            problems = [f"no submitted folder {folder}"]
        elif nbgrader is None:
            problems = ["not autograded yet (no submission in the gradebook)"]
        else:
            cli = cli_scores(folder, probe_timeout)
            problems = compare(nbgrader, cli, mapping)
            nb_total = sum(s for s, _ in nbgrader.values())
            cli_total = sum(s for s, _, _ in cli.values())
            out(f"{student}: gradebook {nb_total:g}, CLI {cli_total:g} / {sum(m for _, m, _ in cli.values()):g}"
                + ("" if not problems else f"  -- {len(problems)} check(s) differ"))
        for line in problems:
            out(f"    {line}")
        report[student] = problems
    return report


def add_arguments(parser, command="nbgrader-verify"):
    parser.add_argument("assignment", nargs="?", default=ASSIGNMENT)
    parser.add_argument("--student", nargs="*", help="student ids (default: everyone in gradebook/submitted)")
    parser.add_argument("--root", default=None, help="course directory (default: the repository root)")
    parser.add_argument("--probe-timeout", type=float, default=None,
                        help="seconds per probe (default: BNLAB_PROBE_TIMEOUT, else 30)")


def run(args):
    report = verify(os.path.abspath(args.root or default_root()), args.assignment, args.student, args.probe_timeout)
    if not report:
        print("no submissions found", file=sys.stderr)
        return 1
    bad = [s for s, problems in report.items() if problems]
    print(f"{len(report) - len(bad)} of {len(report)} submissions agree with the CLI"
          + (f"; look at: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0

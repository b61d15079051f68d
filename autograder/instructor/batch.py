"""Grade a whole class: ``python -m autograder grade-batch SUBMISSIONS_DIR --out OUT_DIR``.

One submission per sub-folder (or per ``.py`` / ``.ipynb`` file) of SUBMISSIONS_DIR,
each graded exactly like ``python -m autograder grade`` (``runner.grade_submission``,
``report.gradescope``), by a pool of ``--workers`` processes
(default: one per core), one torch thread each. What comes out, under OUT_DIR:

- ``students/<folder>/results.json``: Gradescope's format; ``extra_data.bnlab`` records
  the student's name, the submission's sha256, the grader's sha256 and the reason if
  grading itself failed. ``<folder>`` is the student's name when it is a plain lowercase
  name, else a slug and a hash of it (``roster.py``): no name can reach or overwrite
  another student's results or the files below; ``students.csv`` maps names to folders;
- ``grades.csv``: student, total, max, one column per check id, error;
- ``summary.md``, ``summary.json``, ``scores.png``: see ``class_summary.py``;
- ``changes.csv`` when students graded before were graded again (``--regrade``, or
  a submission that changed): total before and after, checks now passing / failing
  (the file stays from the last run that graded someone again).

Resumable: a student whose results.json exists and records the sha256 of the
submission as it is now (and no grading failure) is skipped, unless ``--regrade``. Every file is written to a
temporary name and renamed, so an interrupted run leaves no half-written report.
A submission whose grading crashes gets a zero row with the reason; the batch goes on.

``python -m autograder collect OUT_DIR`` (``collect``) rebuilds grades.csv and the
summary from OUT_DIR/<student>/results.json files graded elsewhere (one CI job per
submission, see docs/class-scale.md), without grading anything.
"""
import concurrent.futures
import csv
import hashlib
import io
import json
import multiprocessing
import os
import sys
import time

from .. import course
from ..core.report import write_text as write_atomic  # temp file + rename, shared with the CLI
from . import class_summary
from .roster import SUBMISSION_SUFFIXES, csv_cell, discover, display_name, folder_name, results_folder  # noqa: F401

SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git"}
RESULTS = "results.json"


# ---- what to grade (``roster.discover``) ----

def tree_hash(path, skip=SKIP_DIRS):
    """sha256 over the relative names and bytes of every file under ``path`` (or of one file)."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        files = [(os.path.basename(path), path)]
    else:
        files = []
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in skip)
            files += [(os.path.relpath(os.path.join(folder, n), path), os.path.join(folder, n)) for n in names]
    for rel, full in sorted(files):
        if os.path.islink(full) or not os.path.isfile(full):
            continue
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def grader_hash():
    """sha256 of the grader's own code: tells which results came from an older grader."""
    return tree_hash(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the whole package


# ---- grading one submission (the same path as `python -m autograder grade`) ----

def grade_submission(path, **options):
    """Gradescope's results dict for one submission (``runner.grade_submission``'s options);
    raises only if the grader itself fails."""
    from ..core import report, runner
    graded = runner.grade_submission(path, **options)
    return report.gradescope(graded.results, graded.output, tampering=graded.context.get("tampering"))


def zero_report(reason, include_hidden=True, only=None):
    """Every check failed with ``reason``: what a submission gets when grading itself broke."""
    from ..core import runner
    checks = runner.selected_checks(include_hidden, only)
    return {"score": 0.0, "output": f"not graded: {reason}",
            "tests": [{"name": c.id, "score": 0.0, "max_score": c.points, "status": "failed",
                       "output": f"{c.title}\nnot graded: {reason}",
                       "visibility": "after_published" if c.hidden else "visible"} for c in checks]}


def init_worker():
    """One torch thread per grading process: N workers on N cores, not N x N threads."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)


def grade_job(student, path, options):
    """Pool job: grade, never raise; returns (student, report dict, seconds, error or "")."""
    start = time.monotonic()
    error = ""
    try:
        data = grade_submission(path, **options)
    except Exception as exc:  # a grader failure is this student's zero row, not the batch's end
        error = f"the grader failed on this submission ({type(exc).__name__}: {exc})"[:500]
        if type(exc).__name__ == "NoSandbox":  # no student code ran: rerun where namespaces work, or --unsandboxed
            error = f"no sandbox ({exc})"[:500]
        data = zero_report(error, options.get("include_hidden", True), options.get("only"))
    return student, data, time.monotonic() - start, error


# ---- the batch ----

def read_results(path):
    """A results.json's dict, or None if it is missing or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if type(data) is dict else None


def load_results(out_dir, student):
    """The student's last results, or None (also when the folder holds another name's results)."""
    data = read_results(os.path.join(results_folder(out_dir, student), RESULTS))
    return data if data is not None and bnlab_extra(data).get("student") == student else None


def bnlab_extra(data):
    return (data or {}).get("extra_data", {}).get("bnlab", {})


def save(out_dir, student, data, sha, grader, seconds, error, previous):
    data = dict(data)
    data["execution_time"] = round(seconds, 2)
    data["extra_data"] = {"bnlab": {**bnlab_extra(data), "student": student, "submission_sha256": sha, "grader_sha256": grader,
                                    "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "error": error}}
    folder = results_folder(out_dir, student)
    if previous is not None:
        write_atomic(os.path.join(folder, "results.previous.json"), json.dumps(previous, indent=1, ensure_ascii=False))
    write_atomic(os.path.join(folder, RESULTS), json.dumps(data, indent=1, ensure_ascii=False))
    return data


def run_pool(jobs, workers, options, on_done, job=None, initializer=init_worker):
    """Grade ``jobs`` [(student, path)] in a process pool; ``on_done(student, data, seconds, error)``.

    If a pool process dies (it should not: student code runs in its own sandbox),
    the jobs it took down are graded again one by one in a fresh pool each; a
    job that kills its pool twice gets a zero row."""
    job = job or grade_job
    context = multiprocessing.get_context("spawn")
    broken = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=initializer) as pool:
        futures = {pool.submit(job, s, p, options): (s, p) for s, p in jobs}
        for future in concurrent.futures.as_completed(futures):
            try:
                on_done(*future.result())
            except concurrent.futures.process.BrokenProcessPool:
                broken.append(futures[future])
    for student, path in broken:
        try:
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context, initializer=initializer) as pool:
                on_done(*pool.submit(job, student, path, options).result())
        except concurrent.futures.process.BrokenProcessPool:
            reason = "the grading process died while grading this submission"
            on_done(student, zero_report(reason, options.get("include_hidden", True), options.get("only")),
                    0.0, reason)


def changes(previous, current):
    """One row for a student graded again: totals before/after and the checks that flipped."""
    before = {t["name"]: t["status"] for t in previous.get("tests", [])}
    after = {t["name"]: t["status"] for t in current.get("tests", [])}
    now_passing = [n for n, s in after.items() if s == "passed" and before.get(n) != "passed"]
    now_failing = [n for n, s in after.items() if s != "passed" and before.get(n) == "passed"]
    old, new = float(previous.get("score", 0)), float(current.get("score", 0))
    return {"before": old, "after": new, "change": new - old,
            "now_passing": now_passing, "now_failing": now_failing}


def grades_csv(rows, check_ids):
    """student, total, max, one column per check id (points), error, flagged (the tamper scan's findings)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "total", "max"] + check_ids + ["error", "flagged"])
    for student, data in rows:
        scores = {t["name"]: t["score"] for t in data.get("tests", [])}
        max_total = sum(t["max_score"] for t in data.get("tests", []))
        w.writerow([csv_cell(student), f"{data.get('score', 0):g}", f"{max_total:g}"]
                   + [f"{scores[c]:g}" if c in scores else "" for c in check_ids] + [bnlab_extra(data).get("error", ""),
                                                                                      flag_cell(data)])
    return buf.getvalue()


def students_csv(found):
    """student, folder (under OUT/students/), submission (its name in the submissions folder)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "folder", "submission"])
    for student, path in found:
        submission = display_name(os.path.basename(path))
        w.writerow([csv_cell(student), f"students/{folder_name(student)}", csv_cell(submission)])
    return buf.getvalue()


def flag_cell(data):
    """'' or 'N finding(s): where: what; ...' (the first three) for grades.csv's flagged column."""
    found = bnlab_extra(data).get("tampering") or []
    if not found:
        return ""
    shown = "; ".join(f"{f.get('where', '?')}: {f.get('what', '?')}" for f in found[:3])
    return f"{len(found)} finding(s): {shown}"


def changes_csv(diffs):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "before", "after", "change", "now_passing", "now_failing"])
    for student, d in diffs:
        w.writerow([csv_cell(student), f"{d['before']:g}", f"{d['after']:g}", f"{d['change']:+g}",
                    " ".join(d["now_passing"]), " ".join(d["now_failing"])])
    return buf.getvalue()


def grade_batch(submissions_dir, out_dir, workers=None, regrade=False, include_hidden=True, only=None,
                probe_timeout=None, time_limit=None, progress=True, log=print, unsandboxed=None):
    """Grade every submission that needs it, then write grades.csv, the summary and changes.csv.

    Returns {"graded": [...], "skipped": [...], "changed": [(student, diff)], "rows": [(student, data)]}."""
    from ..core import runner
    os.makedirs(out_dir, exist_ok=True)
    found = discover(submissions_dir)
    grader = grader_hash()
    hashes = {s: tree_hash(p) for s, p in found}
    previous = {s: load_results(out_dir, s) for s, _ in found}
    todo = [(s, p) for s, p in found  # never graded, changed since, or grading itself failed last time
            if regrade or previous[s] is None or bnlab_extra(previous[s]).get("submission_sha256") != hashes[s]
            or bnlab_extra(previous[s]).get("error")]
    todo_names = {s for s, _ in todo}
    skipped = [s for s, _ in found if s not in todo_names]
    stale = [s for s in skipped if bnlab_extra(previous[s]).get("grader_sha256") != grader]
    workers = max(1, min(workers or course.cores(), len(todo) or 1))
    log(f"{len(found)} submissions: " + (f"{len(todo)} to grade with {workers} worker(s), " if todo else "")
        + f"{len(skipped)} already graded"
        + (f" ({len(stale)} by an older grader: add --regrade to grade them again)" if stale else ""))

    options = {"include_hidden": include_hidden, "only": only,
               "probe_timeout": course.setting("probe_timeout", probe_timeout),
               "time_limit": course.setting("time_limit", time_limit),
               "unsandboxed": course.setting("unsandboxed", unsandboxed),
               "side_worker": False}   # the pool already fills the cores: one worker per submission
    current, diffs = {}, []
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), unit="submission", file=sys.stderr, dynamic_ncols=True)

    def on_done(student, data, seconds, error):
        current[student] = save(out_dir, student, data, hashes[student], grader, seconds, error, previous[student])
        if previous[student] is not None:
            diffs.append((student, changes(previous[student], current[student])))
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(student[-20:])

    start = time.monotonic()
    try:
        if todo:
            run_pool(todo, workers, options, on_done)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.monotonic() - start

    rows = []
    for student, _ in found:
        data = current.get(student) or previous[student]
        if data is not None:
            rows.append((student, data))
    check_ids = [c.id for c in runner.selected_checks(include_hidden, only)]
    seen = {t["name"] for _, d in rows for t in d.get("tests", [])}
    check_ids += sorted(seen - set(check_ids))
    write_atomic(os.path.join(out_dir, "grades.csv"), grades_csv(rows, check_ids))
    write_atomic(os.path.join(out_dir, "students.csv"), students_csv(found))
    class_summary.write_summary(out_dir, rows, check_ids)

    diffs.sort()
    changed = [(s, d) for s, d in diffs if d["change"] or d["now_passing"] or d["now_failing"]]
    if diffs:
        write_atomic(os.path.join(out_dir, "changes.csv"), changes_csv(changed))
        log(f"graded again: {len(diffs)} student(s); total changed for "
            f"{sum(1 for _, d in changed if d['change'])}; written to {os.path.join(out_dir, 'changes.csv')}")
        for student, d in changed:
            flips = "".join([f"; now passing: {', '.join(d['now_passing'])}" if d["now_passing"] else "",
                             f"; now failing: {', '.join(d['now_failing'])}" if d["now_failing"] else ""])
            log(f"  {student}: {d['before']:g} -> {d['after']:g} ({d['change']:+g}){flips}")
    if todo:
        log(f"graded {len(todo)} in {elapsed:.1f} s ({60 * len(todo) / max(elapsed, 1e-9):.1f} per minute)")
    errors = [s for s, d in rows if bnlab_extra(d).get("error")]
    if errors:
        log(f"grading failed for {len(errors)} submission(s) (zero rows, reason in grades.csv): {', '.join(errors)}")
    log(f"wrote {os.path.join(out_dir, 'grades.csv')}, {os.path.join(out_dir, 'summary.md')}, "
        f"{os.path.join(out_dir, 'scores.png')}")
    return {"graded": [s for s, _ in todo], "skipped": skipped, "changed": changed, "rows": rows,
            "seconds": elapsed, "workers": workers}


def collect(out_dir):
    """Rebuild grades.csv and the summary from OUT_DIR/students/*/results.json (grade-batch's
    layout) and OUT_DIR/*/results.json (one CI job per student); returns the summary."""
    from ..core import runner
    from .roster import STUDENTS
    rows, taken = [], set()
    places = [os.path.join(out_dir, STUDENTS, n) for n in sorted(os.listdir(os.path.join(out_dir, STUDENTS)))] \
        if os.path.isdir(os.path.join(out_dir, STUDENTS)) else []
    places += [os.path.join(out_dir, n) for n in sorted(os.listdir(out_dir)) if n != STUDENTS]
    for place in places:
        data = read_results(os.path.join(place, RESULTS)) if os.path.isdir(place) else None
        name = bnlab_extra(data).get("student")
        name = name if type(name) is str else display_name(os.path.basename(place))
        if data is not None and type(data.get("tests")) is list and name not in taken:
            taken.add(name)
            rows.append((name, data))
    try:
        check_ids = [c.id for c in runner.selected_checks(True)]
    except runner.MissingHidden:  # a copy of the grader without the hidden checks
        check_ids = [c.id for c in runner.selected_checks(False)]
    seen = {t["name"] for _, d in rows for t in d["tests"]}
    check_ids = [c for c in check_ids if c in seen] + sorted(seen - set(check_ids), key=class_summary.natural_key)
    write_atomic(os.path.join(out_dir, "grades.csv"), grades_csv(rows, check_ids))
    return class_summary.write_summary(out_dir, rows, check_ids)


# ---- command line ----

def add_arguments(parser, command="grade-batch"):
    if command == "collect":
        parser.add_argument("out_dir", help="a folder of <student>/results.json files")
        return parser
    s = course.SETTINGS
    parser.add_argument("submissions", help="a folder: one submission per sub-folder, .py or .ipynb file")
    parser.add_argument("--out", required=True, help="output folder (per-student results.json, grades.csv, summary)")
    parser.add_argument("--workers", type=int, default=None, help="grading processes (default: the cores this process may use)")
    parser.add_argument("--regrade", action="store_true",
                        help="grade every submission again, even unchanged ones, and report who changed")
    parser.add_argument("--public-only", action="store_true", help="run only the public checks")
    parser.add_argument("--only", nargs="*", help="check ids or pieces to run")
    parser.add_argument("--probe-timeout", type=float,
                        help=f"{s['probe_timeout'].help} (default {s['probe_timeout'].default:g})")
    parser.add_argument("--time-limit", type=float, help=f"{s['time_limit'].help} (default {s['time_limit'].default:g})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="grade even where the sandbox's private file system cannot be built (trusted code only)")
    return parser


def run(args):
    if args.command == "collect":
        if not os.path.isdir(args.out_dir):
            print(f"error: {args.out_dir!r} is not a folder", file=sys.stderr)
            return 2
        s = collect(args.out_dir)
        print(f"{s['students']} students; wrote grades.csv, summary.md, summary.json, scores.png in {args.out_dir}")
        return 0
    if not os.path.isdir(args.submissions):
        print(f"error: {args.submissions!r} is not a folder", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    grade_batch(args.submissions, args.out, workers=args.workers, regrade=args.regrade,
                include_hidden=not args.public_only, only=args.only, probe_timeout=args.probe_timeout,
                time_limit=args.time_limit, progress=not args.no_progress,
                unsandboxed=True if args.unsandboxed else None)
    return 0

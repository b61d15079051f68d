"""What the class missed: per check failure counts, the commonest messages, the score distribution.

Input: ``rows`` = [(student, results dict in Gradescope's format)], as ``batch.py``
writes them. Output, in OUT_DIR: ``summary.json`` (everything), ``summary.md`` (for
the instructor: concepts and checks sorted by how many students failed them, with
the top messages) and ``scores.png`` (histogram of totals).

``python -m autograder.insight OUT_DIR`` rebuilds ``grades.csv`` and the summary from
OUT_DIR/<student>/results.json files that were graded elsewhere (one CI job per
submission, see docs/class-scale.md), without grading anything.

Messages are grouped after replacing every number by ``#`` (so "expected 0.73 at
index (0,2,0,0), got 0.81" and "expected 0.12 at index (1,0,0,0), got 0.50" are one
mistake); each group is shown with one real example and its count.
"""
import argparse
import collections
import json
import os
import re
import statistics
import sys

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
TOP_MESSAGES = 3
EXAMPLE_CHARS = 400


def normalise(message):
    """The grouping key of a failure message: numbers -> '#', whitespace collapsed."""
    return " ".join(NUMBER.sub("#", message).split())[:1000]


def failure_message(test):
    """A failed test's message without its first line (the check's title, see report.gradescope)."""
    text = test.get("output", "")
    return text.split("\n", 1)[1].strip() if "\n" in text else text.strip()


def check_info(check_ids):
    """{id: (piece, title, hidden)} from the registry (checks are imported by the caller's grading)."""
    from .check import REGISTRY
    info = {}
    for cid in check_ids:
        c = REGISTRY.get(cid)
        info[cid] = (c.piece, c.title, c.hidden) if c else ("?", cid, False)
    return info


def summarize(rows, check_ids):
    """Everything the summary shows, as plain data."""
    n = len(rows)
    info = check_info(check_ids)
    totals = [float(d.get("score", 0)) for _, d in rows]
    max_total = max([sum(t["max_score"] for t in d.get("tests", [])) for _, d in rows] or [0])
    failed = collections.defaultdict(list)     # check id -> [message]
    earned = collections.defaultdict(float)    # piece -> points earned by the class
    possible = collections.defaultdict(float)  # piece -> points possible for the class
    perfect = collections.Counter()            # piece -> students who passed all of its checks
    for _, data in rows:
        missed = set()
        for t in data.get("tests", []):
            piece = info.get(t["name"], ("?",))[0]
            earned[piece] += t["score"]
            possible[piece] += t["max_score"]
            if t["status"] != "passed":
                failed[t["name"]].append(failure_message(t))
                missed.add(piece)
        for piece in {info.get(t["name"], ("?",))[0] for t in data.get("tests", [])} - missed:
            perfect[piece] += 1
    checks = []
    for cid in check_ids:
        messages = failed.get(cid, [])
        groups = collections.OrderedDict()
        for m in messages:
            groups.setdefault(normalise(m), []).append(m)
        top = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:TOP_MESSAGES]
        piece, title, hidden = info[cid]
        checks.append({"id": cid, "piece": piece, "title": title, "hidden": hidden, "failed": len(messages),
                       "percent": round(100.0 * len(messages) / n, 1) if n else 0.0,
                       "messages": [{"count": len(ms), "pattern": key, "example": ms[0]} for key, ms in top]})
    pieces = [{"piece": p, "earned_percent": round(100.0 * earned[p] / possible[p], 1) if possible[p] else 0.0,
               "all_passed": perfect[p]} for p in dict.fromkeys(c["piece"] for c in checks)]
    errors = [s for s, d in rows if d.get("extra_data", {}).get("bnlab", {}).get("error")]
    flagged = {s: d["extra_data"]["bnlab"]["tampering"] for s, d in rows
               if d.get("extra_data", {}).get("bnlab", {}).get("tampering")}
    return {
        "students": n, "max_total": max_total,
        "mean": round(statistics.mean(totals), 2) if totals else 0.0,
        "median": statistics.median(totals) if totals else 0.0,
        "min": min(totals, default=0.0), "max": max(totals, default=0.0),
        "full_marks": sum(1 for t in totals if max_total and t >= max_total),
        "zero": sum(1 for t in totals if t == 0),
        "totals": {s: float(d.get("score", 0)) for s, d in rows},
        "grading_failed": errors,
        "flagged": flagged,
        "pieces": pieces,
        "checks": checks,
    }


def one_line(text, limit=EXAMPLE_CHARS):
    text = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + " ..."


def cell(text):
    return text.replace("|", "\\|")


def markdown(s):
    n, top = s["students"], s["max_total"]
    pct = f" ({100 * s['mean'] / top:.0f}%)" if top else ""
    lines = ["# Class summary", "",
             f"{n} students · mean {s['mean']:g} / {top:g}{pct} · median {s['median']:g} · "
             f"min {s['min']:g} · max {s['max']:g} · full marks: {s['full_marks']} · zero: {s['zero']}", ""]
    if s["grading_failed"]:
        lines += [f"**Grading failed** for {len(s['grading_failed'])} submission(s) (zero rows; the reason is in "
                  f"grades.csv): {', '.join(s['grading_failed'])}", ""]
    if s.get("flagged"):
        lines += [f"**Flagged** for review: {len(s['flagged'])} submission(s) reach for the grader's internals or "
                  f"an escape hatch (their observation-based checks scored zero; see each results.json, "
                  f"extra_data.bnlab.tampering):", ""]
        for student, found in sorted(s["flagged"].items()):
            first = found[0] if isinstance(found[0], dict) else {}
            lines.append(f"- {cell(student)}: {len(found)} finding(s), e.g. "
                         f"{cell(one_line(str(first.get('where', '?')) + ': ' + str(first.get('what', '?'))))}")
        lines.append("")
    lines += ["![score distribution](scores.png)", "", "## By concept, weakest first", "",
              "| piece | points earned by the class | students who passed all its checks |", "|---|---:|---:|"]
    for p in sorted(s["pieces"], key=lambda p: p["earned_percent"]):
        lines.append(f"| {p['piece']} | {p['earned_percent']:g}% | {p['all_passed']} / {n} |")
    missed = sorted((c for c in s["checks"] if c["failed"]), key=lambda c: (-c["failed"], c["id"]))
    lines += ["", "## Checks, most failed first", "", "| check | piece | failed | % |", "|---|---|---:|---:|"]
    for c in missed:
        lines.append(f"| `{c['id']}`{' (hidden)' if c['hidden'] else ''} | {c['piece']} | {c['failed']} / {n} | "
                     f"{c['percent']:g}% |")
    passed_all = len(s["checks"]) - len(missed)
    if passed_all:
        lines += ["", f"{passed_all} check(s) passed by every student."]
    lines += ["", "## Most common failure messages", ""]
    for c in missed:
        lines += [f"### `{c['id']}`: {c['failed']} of {n} failed ({c['percent']:g}%)", "", f"{c['title']}", ""]
        for m in c["messages"]:
            lines.append(f"- **{m['count']}×** {cell(one_line(m['example']))}")
        lines.append("")
    return "\n".join(lines)


def plot(s, path):
    """Histogram of totals (PNG), with the mean marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.ticker
    from matplotlib import pyplot as plt
    totals = list(s["totals"].values())
    top = s["max_total"] or 1
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.hist(totals, bins=min(24, max(4, int(top))), range=(0, top), color="#4C72B0", edgecolor="white")
    if totals:
        ax.axvline(s["mean"], color="#C44E52", linestyle="--", label=f"mean {s['mean']:g}")
        ax.legend(loc="upper center")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(f"total score (out of {top:g})")
    ax.set_ylabel("students")
    ax.set_title(f"Score distribution ({s['students']} students)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_summary(out_dir, rows, check_ids):
    from .batch import write_atomic
    s = summarize(rows, check_ids)
    write_atomic(os.path.join(out_dir, "summary.json"), json.dumps(s, indent=1, ensure_ascii=False))
    write_atomic(os.path.join(out_dir, "summary.md"), markdown(s))
    tmp = os.path.join(out_dir, ".tmp-scores.png")
    plot(s, tmp)
    os.replace(tmp, os.path.join(out_dir, "scores.png"))
    return s


def collect(out_dir):
    """Rebuild grades.csv and the summary from OUT_DIR/*/results.json; returns the summary."""
    from . import batch, runner
    rows = []
    for name in sorted(os.listdir(out_dir)):
        data = batch.load_results(out_dir, name) if os.path.isdir(os.path.join(out_dir, name)) else None
        if data is not None and "tests" in data:
            rows.append((name, data))
    try:
        check_ids = [c.id for c in runner.selected_checks(True)]
    except SystemExit:  # a copy of the grader without the hidden checks
        check_ids = [c.id for c in runner.selected_checks(False)]
    seen = {t["name"] for _, d in rows for t in d["tests"]}
    check_ids = [c for c in check_ids if c in seen] + sorted(seen - set(check_ids))
    batch.write_atomic(os.path.join(out_dir, "grades.csv"), batch.grades_csv(rows, check_ids))
    return write_summary(out_dir, rows, check_ids)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder.insight",
                                     description="grades.csv + summary from OUT_DIR/<student>/results.json")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.out_dir):
        print(f"error: {args.out_dir!r} is not a folder", file=sys.stderr)
        return 2
    s = collect(args.out_dir)
    print(f"{s['students']} students; wrote grades.csv, summary.md, summary.json, scores.png in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

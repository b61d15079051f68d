"""What the class missed: per check failure counts, the commonest messages, the score distribution.

Input: ``rows`` = [(student, results dict in Gradescope's format)], as ``batch.py``
writes them. Output, in OUT_DIR: ``summary.json`` (everything), ``summary.md`` (for
the instructor, short: first the checks students got *wrong*, most students first, with
the commonest mistake; then the pieces left *not attempted* (untouched stubs, blank
answers), kept apart from the wrong ones; then the concepts, weakest first) and
``scores.png`` (histogram of totals). When matplotlib cannot draw, the summary is
written anyway, without the plot, and says why. Check ids sort naturally (q2 < q10).

``python -m autograder collect OUT_DIR`` (``batch.collect``) rebuilds ``grades.csv`` and
this summary from OUT_DIR/<student>/results.json files that were graded elsewhere.

Messages are grouped after replacing every number by ``#`` (so "expected 0.73 at
index (0,2,0,0), got 0.81" and "expected 0.12 at index (1,0,0,0), got 0.50" are one
mistake); each group is shown with one real example and its count.
"""
import collections
import json
import os
import re
import statistics


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
TOP_MESSAGES = 3
EXAMPLE_CHARS = 400
MOST_MISSED = 12      # checks shown in summary.md's first table (all of them are in summary.json)
MISTAKES_SHOWN = 6    # checks whose commonest messages summary.md spells out
# What an untouched stub or a blank answer says (student.error_message, checks/quiz.py): "not attempted".
NOT_ATTEMPTED = re.compile(r"not implemented yet|no answer yet|'' is not one of the letters")


def natural_key(text):
    """Sort key that orders embedded numbers by value: quiz.q2 < quiz.q10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def lesson_order(check):
    """Ties are shown in the lesson's order of pieces, then by id, naturally (quiz.q2 < quiz.q10)."""
    from ..course import PIECES
    piece = PIECES.index(check["piece"]) if check["piece"] in PIECES else len(PIECES)
    return piece, natural_key(check["id"])


def not_attempted(message):
    """Whether a failure message is an untouched stub or a blank answer, rather than a wrong one."""
    return bool(NOT_ATTEMPTED.search(message))


def normalise(message):
    """The grouping key of a failure message: numbers -> '#', whitespace collapsed."""
    return " ".join(NUMBER.sub("#", message).split())[:1000]


def failure_message(test):
    """A failed test's message without its first line (the check's title, see report.gradescope)."""
    text = test.get("output", "")
    return text.split("\n", 1)[1].strip() if "\n" in text else text.strip()


def check_info(check_ids):
    """{id: (piece, title, hidden)} from the registry (checks are imported by the caller's grading)."""
    from ..core.check import REGISTRY
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
    untried = collections.Counter()          # piece -> students who attempted none of its checks
    for _, data in rows:
        missed, tried = set(), set()
        for t in data.get("tests", []):
            piece = info.get(t["name"], ("?",))[0]
            earned[piece] += t["score"]
            possible[piece] += t["max_score"]
            if t["status"] != "passed":
                failed[t["name"]].append(failure_message(t))
                missed.add(piece)
            if t["status"] == "passed" or not not_attempted(failure_message(t)):
                tried.add(piece)
        pieces_here = {info.get(t["name"], ("?",))[0] for t in data.get("tests", [])}
        for piece in pieces_here - missed:
            perfect[piece] += 1
        for piece in pieces_here - tried:
            untried[piece] += 1
    checks = []
    for cid in check_ids:
        messages = failed.get(cid, [])
        groups = collections.OrderedDict()
        for m in messages:
            groups.setdefault(normalise(m), []).append(m)
        top = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:TOP_MESSAGES]
        untouched = sum(1 for m in messages if not_attempted(m))
        piece, title, hidden = info[cid]
        checks.append({"id": cid, "piece": piece, "title": title, "hidden": hidden, "failed": len(messages),
                       "percent": round(100.0 * len(messages) / n, 1) if n else 0.0,
                       "wrong": len(messages) - untouched, "not_attempted": untouched,
                       "messages": [{"count": len(ms), "pattern": key, "example": ms[0],
                                     "not_attempted": not_attempted(ms[0])} for key, ms in top]})
    pieces = [{"piece": p, "earned_percent": round(100.0 * earned[p] / possible[p], 1) if possible[p] else 0.0,
               "all_passed": perfect[p], "not_attempted": untried[p]}
              for p in dict.fromkeys(c["piece"] for c in checks)]
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
    """summary.md: what the class got wrong first, then what it left untouched, then the concepts."""
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
    wrong = sorted((c for c in s["checks"] if c["wrong"]), key=lambda c: (-c["wrong"], lesson_order(c)))
    lines += ["## What the class got wrong", ""]
    if wrong:
        lines += ["| check | piece | wrong | not attempted |", "|---|---|---:|---:|"]
        for c in wrong[:MOST_MISSED]:
            lines.append(f"| `{c['id']}`{' (hidden)' if c['hidden'] else ''} | {c['piece']} | {c['wrong']} / {n} | "
                         f"{c['not_attempted']} / {n} |")
        if len(wrong) > MOST_MISSED:
            lines.append(f"\n... and {len(wrong) - MOST_MISSED} more check(s) in summary.json.")
        lines += ["", "Commonest mistakes (numbers vary between students; one example each):", ""]
        for c in wrong[:MISTAKES_SHOWN]:
            shown = [m for m in c["messages"] if not m["not_attempted"]]
            if shown:
                lines.append(f"- `{c['id']}`: " + "; ".join(f"**{m['count']}×** {cell(one_line(m['example']))}"
                                                           for m in shown))
    else:
        lines.append("No wrong answers: every failed check was not attempted.")
    untouched = [p for p in s["pieces"] if p["not_attempted"]]
    lines += ["", "## Not attempted (untouched stubs, blank answers)", ""]
    if untouched:
        lines += ["| piece | students who attempted none of its checks |", "|---|---:|"]
        for p in sorted(untouched, key=lambda p: -p["not_attempted"]):
            lines.append(f"| {p['piece']} | {p['not_attempted']} / {n} |")
    else:
        lines.append("Every student attempted every piece.")
    lines += ["", "## By concept, weakest first", "",
              "| piece | points earned by the class | students who passed all its checks |", "|---|---:|---:|"]
    for p in sorted(s["pieces"], key=lambda p: p["earned_percent"]):
        lines.append(f"| {p['piece']} | {p['earned_percent']:g}% | {p['all_passed']} / {n} |")
    passed_all = sum(1 for c in s["checks"] if not c["failed"])
    if passed_all:
        lines += ["", f"{passed_all} check(s) passed by every student."]
    lines += [""]
    if s.get("plot_error"):
        lines.append(f"(No score plot: {s['plot_error']}. The totals are in grades.csv.)")
    else:
        lines.append("![score distribution](scores.png)")
    return "\n".join(lines) + "\n"


def plot(s):
    """Histogram of totals, with the mean marked: PNG bytes."""
    import io
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_summary(out_dir, rows, check_ids):
    """summary.json, summary.md and scores.png in ``out_dir``; the plot is optional.

    When matplotlib is missing or cannot draw, ``summary["plot_error"]`` says why, summary.md
    says so, and a scores.png left from an earlier run is removed (it would be stale)."""
    from ..core.report import write_bytes, write_text
    s = summarize(rows, check_ids)
    png = os.path.join(out_dir, "scores.png")
    try:
        image = plot(s)
        s["plot_error"] = ""
    except Exception as exc:  # ImportError (not installed), or any backend failure: the summary still matters
        s["plot_error"] = f"matplotlib could not draw it ({type(exc).__name__}: {str(exc)[:200]})"
        image = None
    write_text(os.path.join(out_dir, "summary.json"), json.dumps(s, indent=1, ensure_ascii=False))
    write_text(os.path.join(out_dir, "summary.md"), markdown(s))
    if image is not None:
        write_bytes(png, image)
    elif os.path.isfile(png):
        os.unlink(png)
    return s

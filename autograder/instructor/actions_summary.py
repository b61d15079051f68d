"""One submission's score table in Markdown, for a GitHub Actions job summary.

``python -m autograder actions-summary results.json --out "$GITHUB_STEP_SUMMARY"`` renders
the Gradescope-format report that ``python -m autograder grade --results`` wrote.
``markdown()`` also takes the runner's ``Result`` list directly.

Hidden checks are listed with their points; their messages follow the course's
hidden-feedback setting (``--hidden-feedback score|message``, else
``$BNLAB_HIDDEN_FEEDBACK``, else "score": ``report.hidden_feedback()``), as in
nbgrader's feedback and Gradescope: a message names the input that broke the
code, which is what the hidden checks keep to themselves.
"""
import json
import sys

from .. import course
from ..core.report import HIDDEN_NOTE, hidden_feedback

HIDDEN_FEEDBACK_VALUES = course.SETTINGS["hidden_feedback"].choices

MAX_MESSAGE = 1200


def as_report(results):
    """A report dict from either a report dict or a list of runner ``Result``s."""
    if isinstance(results, dict):
        return results
    from ..core import report
    return report.gradescope(list(results))


def cell(text):
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def message_of(test):
    text = test.get("output", "")
    return text.split("\n", 1)[1].strip() if "\n" in text else ""


def markdown(results, show_hidden=None, title="bnlab"):
    """``show_hidden``: None follows ``hidden_feedback()``; True / False force it."""
    if show_hidden is None:
        show_hidden = hidden_feedback() == "message"
    data = as_report(results)
    tests = data.get("tests", [])
    score, top = float(data.get("score", 0)), sum(t["max_score"] for t in tests)
    passed = sum(t["status"] == "passed" for t in tests)
    pct = f" ({100 * score / top:.0f}%)" if top else ""
    lines = [f"## {title}: {score:g} / {top:g}{pct}", "",
             f"{passed} of {len(tests)} checks passed.", "",
             "| | check | points |", "|---|---|---:|"]
    for t in tests:
        hidden = t.get("visibility", "visible") != "visible"
        mark = "✅" if t["status"] == "passed" else "❌"
        lines.append(f"| {mark} | `{t['name']}`{' (hidden)' if hidden else ''} | {t['score']:g} / {t['max_score']:g} |")
    failed = [t for t in tests if t["status"] != "passed"]
    if failed:
        lines += ["", f"### What to fix ({len(failed)} check{'s' if len(failed) != 1 else ''})", ""]
        for t in failed:
            hidden = t.get("visibility", "visible") != "visible"
            text = HIDDEN_NOTE if hidden and not show_hidden else message_of(t)
            if len(text) > MAX_MESSAGE:
                text = text[:MAX_MESSAGE] + " ..."
            lines.append(f"- `{t['name']}`: {cell(text)}")
    return "\n".join(lines) + "\n"


def add_arguments(parser, command="actions-summary"):
    parser.add_argument("results", help="the results.json written by `python -m autograder grade --results`")
    parser.add_argument("--hidden-feedback", choices=HIDDEN_FEEDBACK_VALUES,
                        help="what to show of hidden checks: score, or score and message "
                             "(default: $BNLAB_HIDDEN_FEEDBACK, else score)")
    parser.add_argument("--show-hidden", action="store_true", help="the same as --hidden-feedback message")
    parser.add_argument("--out", help="append to this file (e.g. \"$GITHUB_STEP_SUMMARY\") instead of printing")
    return parser


def run(args):
    try:
        with open(args.results, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.results!r}: {exc}", file=sys.stderr)
        return 2
    try:
        show_hidden = args.show_hidden or hidden_feedback(args.hidden_feedback) == "message"
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = markdown(data, show_hidden=show_hidden)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


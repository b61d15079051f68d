"""One submission's score table in Markdown, for a GitHub Actions job summary.

``python -m autograder actions-summary results.json --out "$GITHUB_STEP_SUMMARY"`` renders
the Gradescope-format report that ``python -m autograder grade --results`` wrote.
``markdown()`` also takes the runner's ``Result`` list directly.

Hidden checks are listed with their points, but their failure messages are not
shown unless asked (``--show-hidden``): a message names the input that broke the
code, which is what the hidden checks keep to themselves.
"""
import json
import sys

MAX_MESSAGE = 1200
HIDDEN_NOTE = "hidden check: its message is shown once grades are published"


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


def markdown(results, show_hidden=False, title="bnlab"):
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
    parser.add_argument("--show-hidden", action="store_true", help="also show the hidden checks' messages")
    parser.add_argument("--out", help="append to this file (e.g. \"$GITHUB_STEP_SUMMARY\") instead of printing")
    return parser


def run(args):
    try:
        with open(args.results, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.results!r}: {exc}", file=sys.stderr)
        return 2
    text = markdown(data, show_hidden=args.show_hidden)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


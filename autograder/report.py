"""Reports: a terminal table, Gradescope's results.json, JUnit XML."""
import json
import os
import tempfile
import xml.etree.ElementTree as ET

MAX_MESSAGE = 2000
MAX_OUTPUT = 32 * 1024

# What a student sees of a HIDDEN check, the same in every door (nbgrader feedback, Gradescope's
# results.json, the GitHub Actions summary): "score" = its name, pass/fail and points only;
# "message" = also its message (which names the input that broke the code: what hidden checks
# keep to themselves). Public checks always show their messages. Instructors' own reports
# (the CLI's table and --results, nbgrader-verify, grade-batch) always show everything.
HIDDEN_FEEDBACK_ENV = "BNLAB_HIDDEN_FEEDBACK"
HIDDEN_FEEDBACK_VALUES = ("score", "message")
DEFAULT_HIDDEN_FEEDBACK = "score"
HIDDEN_NOTE = "hidden check: only its score is shown"


def hidden_feedback(flag=None):
    """"score" or "message": the flag if given, else $BNLAB_HIDDEN_FEEDBACK, else the default ("score").

    ValueError for any other value (a typo must not publish the hidden messages)."""
    for value, origin in ((flag, "the hidden-feedback flag"), (os.environ.get(HIDDEN_FEEDBACK_ENV), HIDDEN_FEEDBACK_ENV)):
        if value:
            if value.strip().lower() in HIDDEN_FEEDBACK_VALUES:
                return value.strip().lower()
            raise ValueError(f"{origin} must be one of {', '.join(HIDDEN_FEEDBACK_VALUES)}, not {value!r}")
    return DEFAULT_HIDDEN_FEEDBACK


def hidden_view(report, setting=None):
    """A copy of a results.json dict as a student may see it: with ``setting`` "score" (default:
    ``hidden_feedback()``), each hidden test's output is its title, plus HIDDEN_NOTE if it failed."""
    if hidden_feedback(setting) == "message":
        return report
    tests = []
    for t in report.get("tests", []):
        if t.get("visibility", "visible") != "visible":
            title = t.get("output", "").split("\n", 1)[0]
            t = dict(t, output=title + ("" if t.get("status") == "passed" else "\n" + HIDDEN_NOTE))
        tests.append(t)
    return dict(report, tests=tests)


def clip(text, limit):
    return text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} characters cut]"


def total(results):
    return sum(r.score for r in results), sum(r.max_score for r in results)


def table(results):
    width = max([len(r.id) for r in results] + [10])
    lines = [f"{'check':<{width}}  {'result':<6}  {'points':>9}", "-" * (width + 19)]
    for r in results:
        flag = "pass" if r.passed else "FAIL"
        lines.append(f"{r.id:<{width}}  {flag:<6}  {r.score:>4g} / {r.max_score:<3g}")
        if r.message:
            lines.append(f"{'':<{width}}    {clip(r.message, MAX_MESSAGE)}")
    score, out_of = total(results)
    lines += ["-" * (width + 19), f"{'total':<{width}}  {'':<6}  {score:>4g} / {out_of:<3g}"]
    return "\n".join(lines)


def gradescope(results, output="", hidden_visibility="after_published"):
    score, _ = total(results)
    return {
        "score": score,
        "output": clip(output, MAX_OUTPUT),
        "tests": [{
            "name": r.id,
            "score": r.score,
            "max_score": r.max_score,
            "status": "passed" if r.passed else "failed",
            "output": clip(r.title + ("\n" + r.message if r.message else ""), MAX_MESSAGE),
            "visibility": hidden_visibility if r.hidden else "visible",
        } for r in results],
    }


def write_text(path, text):
    """Write to a temporary file beside ``path``, then rename: never follows a link planted at ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, data):
    write_text(path, json.dumps(data, indent=1, ensure_ascii=False))


def junit(results):
    suite = ET.Element("testsuite", name="bnlab", tests=str(len(results)),
                       failures=str(sum(not r.passed for r in results)))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"bnlab.{r.piece}", name=r.id, time=f"{r.seconds:.3f}")
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="points", value=f"{r.score:g}")
        ET.SubElement(props, "property", name="max_points", value=f"{r.max_score:g}")
        if not r.passed:
            ET.SubElement(case, "failure", message=clip(r.message, MAX_MESSAGE))
    return ET.tostring(suite, encoding="unicode")

"""Reports: a terminal table, Gradescope's results.json, JUnit XML."""
import json
import os
import tempfile
import xml.etree.ElementTree as ET

from .. import course

MAX_MESSAGE = 2000
HIDDEN_NOTE = "hidden check: only its score is shown"
MAX_OUTPUT = 32 * 1024
OUTPUT_MODE = 0o600   # every report file: owner-only (docs/class-scale.md, "Output files")
GROUP_AT_LEAST = 3   # failed checks of a piece with one reason that share a table line
MAX_FINDINGS = 50


def hidden_feedback(flag=None):
    """"score" or "message": what a student sees of a hidden check, the same in every door
    (``course.setting("hidden_feedback")``: the flag, else $BNLAB_HIDDEN_FEEDBACK, else "score").
    Instructors' own reports (the CLI's table and --results, grade-batch, nbgrader-verify) show everything."""
    return course.setting("hidden_feedback", flag)


def hidden_view(report, setting=None):
    """A copy of a results.json dict as a student may see it: with "score" (default: ``hidden_feedback()``),
    each hidden test's output is its title, plus HIDDEN_NOTE if it failed."""
    if hidden_feedback(setting) == "message":
        return report
    tests = []
    for t in report.get("tests", []):
        if t.get("visibility", "visible") != "visible":
            title = t.get("output", "").split("\n", 1)[0]
            t = dict(t, output=title + ("" if t.get("status") == "passed" else "\n" + HIDDEN_NOTE))
        tests.append(t)
    return dict(report, tests=tests)


def student_view(results, setting=None):
    """Runner results as a student may see them: with "score" (``hidden_feedback()``), a hidden check's
    message is dropped (HIDDEN_NOTE when it failed). For reports a student can read (``grade --student-view``)."""
    if hidden_feedback(setting) == "message":
        return list(results)
    import dataclasses
    return [dataclasses.replace(r, message="" if r.passed else HIDDEN_NOTE) if r.hidden else r for r in results]


def clip(text, limit):
    return text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} characters cut]"


def total(results):
    return sum(r.score for r in results), sum(r.max_score for r in results)


def reason(message):
    """What a failure message says went wrong, without the call it describes.

    "BatchNorm(3, 2): not implemented yet (...)" -> "not implemented yet (...)"; a message
    without a "context: " prefix is its own reason."""
    _, sep, rest = message.partition(": ")
    return rest if sep and rest.strip() else message


def rows(results, min_group=GROUP_AT_LEAST):
    """Table rows: (label, passed, score, max_score, message, members).

    Failed checks of one piece that fail for the same ``reason`` become one row (at the
    place of the first of them) when there are at least ``min_group``; every other check
    is its own row. Scores per check stay in ``gradescope()`` / results.json."""
    groups = {}
    for r in results:
        if not r.passed and r.message:
            groups.setdefault((r.piece, reason(r.message)), []).append(r)
    out, done = [], set()
    for r in results:
        key = (r.piece, reason(r.message))
        members = groups.get(key, []) if not r.passed and r.message else []
        if len(members) >= min_group:
            if key in done:
                continue
            done.add(key)
            out.append((f"{r.piece}: {len(members)} checks", False, sum(m.score for m in members),
                        sum(m.max_score for m in members), key[1], [m.id for m in members]))
        else:
            out.append((r.id, r.passed, r.score, r.max_score, r.message, [r.id]))
    return out


def table(results):
    """The terminal table: one line per check, or per group of a piece's checks failing alike."""
    lines_of = rows(results)
    width = max([len(label) for label, *_ in lines_of] + [10])
    lines = [f"{'check':<{width}}  {'result':<6}  {'points':>9}", "-" * (width + 19)]
    for label, passed, score, max_score, message, _ in lines_of:
        flag = "pass" if passed else "FAIL"
        lines.append(f"{label:<{width}}  {flag:<6}  {score:>4g} / {max_score:<3g}")
        if message:
            lines.append(f"{'':<{width}}    {clip(message, MAX_MESSAGE)}")
    score, out_of = total(results)
    lines += ["-" * (width + 19), f"{'total':<{width}}  {'':<6}  {score:>4g} / {out_of:<3g}"]
    if len(lines_of) < len(results):
        lines.append("(checks of one piece that fail for the same reason share a line; "
                     "results.json has every check)")
    return "\n".join(lines)


def gradescope(results, output="", hidden_visibility="after_published", tampering=None):
    """Gradescope's results.json. ``tampering`` (``tamper.Finding`` list): when not empty, the report's
    ``output`` starts with it and ``extra_data.bnlab.tampering`` lists it ([{"where", "what"}])."""
    score, _ = total(results)
    findings = [f.as_dict() if hasattr(f, "as_dict") else dict(f) for f in (tampering or [])][:MAX_FINDINGS]
    if findings:
        lines = [f"FLAGGED: the submission reaches for the grader's internals or an escape hatch; checks based on "
                 f"observations made in its process score zero:"] + [f"  {f['where']}: {f['what']}" for f in findings]
        output = "\n".join(lines) + "\n" + output
    data = {
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
    if findings:
        data["extra_data"] = {"bnlab": {"tampering": [{k: clip(str(v), 300) for k, v in f.items()} for f in findings]}}
    return data


def write_bytes(path, data):
    """Write to a temporary file beside ``path``, then rename: never follows a link planted at ``path``.

    Every report the grader writes (results.json, JUnit XML, grades.csv, summary.*, scores.png,
    the Gradescope zip) is created with ``OUTPUT_MODE``, owner-only, whatever the umask: they
    hold grades, messages about a student's code, or the hidden checks."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.fchmod(fd, OUTPUT_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text):
    """``write_bytes`` of ``text`` in UTF-8, newlines as given."""
    write_bytes(path, text.encode("utf-8"))


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

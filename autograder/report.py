"""Reports: a terminal table, Gradescope's results.json, JUnit XML."""
import json
import os
import tempfile
import xml.etree.ElementTree as ET

MAX_MESSAGE = 2000
MAX_OUTPUT = 32 * 1024
MAX_FINDINGS = 50


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

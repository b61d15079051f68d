"""nbgrader plug-ins of the course (``nbgrader_config.py`` loads them; never shipped to students).

``GradeInSandbox`` (``autograder/nbgrader_autograde.py``) replaces nbgrader's
Execute step in ``nbgrader autograde``: no kernel, the CLI's sandboxed grading.

``HideHiddenTests`` runs in ``nbgrader generate_feedback``. nbgrader's feedback shows
every cell's source and outputs, and the autograded notebooks hold the source of
the hidden test cells (nbgrader restores it). This preprocessor removes each
``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region again, as
``generate_assignment`` does for the release, reduces error outputs to one line per
message (a traceback would quote the cell's lines), and applies the course's
hidden-feedback setting to the cells of hidden checks: "score" (the default)
keeps the check line without its message (``FAIL  batch_norm.moving_average  0 / 2``
and ``hidden check: only its score is shown``), "message" keeps the message.
The setting is ``--HideHiddenTests.hidden_feedback=message`` on the command line,
else ``$BNLAB_HIDDEN_FEEDBACK``, else "score" (``report.hidden_feedback()``).
"""
import re

from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Unicode

from .nbgrader_autograde import test_cell_outputs
from ..core.report import HIDDEN_NOTE, hidden_feedback

HIDDEN_CALL = "check_hidden("   # how the generated hidden test cells call their check (autograder/release.py)
CHECK_LINE = re.compile(r"^(pass|FAIL)  (\S+)  (\S+) / (\S+)")


def score_only(outputs):
    """A hidden check's outputs without its message: re-rendered from the check line, else a bare note."""
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            m = CHECK_LINE.match(output.get("text", ""))
            if m:
                flag, check_id, score, top = m.groups()
                passed = flag == "pass"
                return test_cell_outputs(check_id, passed, float(score), float(top), "" if passed else HIDDEN_NOTE)
    failed = any(o.get("output_type") == "error" for o in outputs)
    return test_cell_outputs("hidden check", False, 0, 0, HIDDEN_NOTE)[1:] if failed else []


class HideHiddenTests(ClearHiddenTests):

    hidden_feedback = Unicode(None, allow_none=True,
                              help="what students see of hidden checks: score, or message "
                                   "(default: $BNLAB_HIDDEN_FEEDBACK, else score)").tag(config=True)

    def preprocess(self, nb, resources):
        self.setting = hidden_feedback(self.hidden_feedback)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or self.begin_test_delimeter not in cell.source:
            return cell, resources
        hidden = HIDDEN_CALL in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if hidden and self.setting == "score":
            cell.outputs = score_only(cell.get("outputs", []))
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                lines = str(output.get("evalue", "")).splitlines() or [""]
                output["traceback"] = [f"{output.get('ename', 'Error')}: {lines[0]}"] + lines[1:]
        return cell, resources

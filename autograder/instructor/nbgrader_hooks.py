"""nbgrader plug-ins of the course (``nbgrader_config.py`` loads them; never shipped to students).

``HideHiddenTests`` runs in ``nbgrader generate_feedback``. nbgrader's feedback shows
every cell's source and outputs, and the autograded notebooks hold the source of
the hidden test cells (autograde restored it to run them). This preprocessor
removes each ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region again,
as ``generate_assignment`` does for the release, and reduces the error outputs of
those cells to one line per message: a traceback would quote the cell's lines.
What stays: the cell's comment line, the points, and the check lines the cell
printed ("FAIL batch_norm.moving_average 0 / 2 <message>").
"""
from nbgrader.preprocessors import ClearHiddenTests


class HideHiddenTests(ClearHiddenTests):

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or self.begin_test_delimeter not in cell.source:
            return cell, resources
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                lines = str(output.get("evalue", "")).splitlines() or [""]
                output["traceback"] = [f"{output.get('ename', 'Error')}: {lines[0]}"] + lines[1:]
        return cell, resources

"""nbgrader configuration of the bnlab course (the repository root is the course directory).

Run every nbgrader command from the repository root with the venv's nbgrader
(docs/instructors.md has the whole workflow):

    .venv/bin/nbgrader generate_assignment bn_resnet_densenet --force
    .venv/bin/nbgrader autograde bn_resnet_densenet
    .venv/bin/nbgrader generate_feedback bn_resnet_densenet
    .venv/bin/nbgrader export

(`python -m autograder build-release` regenerates the test cells, then runs generate_assignment.)
Everything with student data (gradebook, submissions, autograded notebooks,
feedback) lives under gradebook/, which git ignores.
"""
import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "gradebook"  # git-ignored


def prepend_env_path(name, folder):
    parts = [p for p in os.environ.get(name, "").split(os.pathsep) if p and p != folder]
    os.environ[name] = os.pathsep.join([folder] + parts)


# nbgrader runs `alembic` by bare name (creating the gradebook) and the kernels as `python`:
# both must be this environment's, whether or not the venv is activated.
prepend_env_path("PATH", os.path.dirname(sys.executable))
# The kernels import the instructor's grader (`autograder`, with the hidden checks) from here.
prepend_env_path("PYTHONPATH", HERE)
sys.path.insert(0, HERE)
# Autograde grades each notebook FILE in a sandboxed worker, like `python -m autograder grade`
# (autograder/notebook.py); one probe may take BNLAB_PROBE_TIMEOUT seconds (the CLI's default: 60).
os.environ["BNLAB_AUTOGRADE"] = "sandbox"
os.environ.setdefault("BNLAB_PROBE_TIMEOUT", "60")

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "bnlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = os.path.join(DATA, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(DATA, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(DATA, "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, DATA, "gradebook.db")
# "autograder": a submission may not bring its own grader package (the test cells import
# `autograder`, and the submission's folder comes first on the kernel's sys.path).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache", "autograder"]
os.makedirs(os.path.join(HERE, DATA), exist_ok=True)

# Per cell. A test cell's first check starts the notebook's worker (load: up to 60 s) and each
# probe may take BNLAB_PROBE_TIMEOUT: the cell limit is above both, so a student's infinite loop
# hits the probe timeout first (zero for the checks it hits, "timed out after 60 s" in the
# feedback) and the other checks are graded. A student's demo cell that loops forever is
# interrupted after this many seconds (CellTimeoutError in that cell; nbgrader still exits 0).
c.Execute.timeout = int(os.environ.get("BNLAB_CELL_TIMEOUT", "300"))
c.Execute.interrupt_on_timeout = True
# A test cell the student deleted is put back (and graded); edited locked cells get their
# source back from the gradebook anyway (checksums).
c.OverwriteCells.add_missing_cells = True

# `nbgrader export` writes the totals here (one row per student and assignment).
c.ExportPlugin.to = os.path.join(HERE, DATA, "grades.csv")

# Feedback: no hidden test source, no traceback quoting it (autograder/nbgrader_hooks.py).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

try:
    from autograder.instructor.nbgrader_hooks import HideHiddenTests
except ImportError:  # a course folder without the grader (the release build's test): regions still go
    from nbgrader.preprocessors import ClearHiddenTests as HideHiddenTests

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

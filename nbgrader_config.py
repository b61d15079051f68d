"""nbgrader configuration of the bnlab course (the repository root is the course directory).

Run every nbgrader command from the repository root with the venv's nbgrader
(docs/instructors.md has the whole workflow). `nbgrader autograde` starts no
kernel: the grader runs the submission in its sandbox, as the CLI does.

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


# nbgrader runs `alembic` by bare name (creating the gradebook): it must be this environment's,
# whether or not the venv is activated.
prepend_env_path("PATH", os.path.dirname(sys.executable))
# nbgrader itself (this process) imports the instructor's grader from here: the plug-ins below and
# the checks GradeInSandbox judges. No kernel runs in autograde, so nothing else gets this path.
sys.path.insert(0, HERE)

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "bnlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = os.path.join(DATA, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(DATA, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(DATA, "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, DATA, "gradebook.db")
# "autograder": a grader package handed in beside the notebooks is not copied to the autograded
# folder (nothing there runs; the sandbox grades the submitted folder as the CLI does).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache", "autograder"]
os.makedirs(os.path.join(HERE, DATA), exist_ok=True)

# Autograde without the student's kernel (autograder/instructor/nbgrader_autograde.py): nbgrader's own
# pipeline with its Execute step replaced by GradeInSandbox, which grades the submitted folder
# once, as `python -m autograder grade FOLDER` (sandboxed worker), and writes each test cell's
# outputs from the results; SaveAutoGrades then records the points. Other code cells are not
# run (their outputs stay cleared by nbgrader's sanitize step). One probe may take
# BNLAB_PROBE_TIMEOUT seconds (default 30, the CLI's), or --GradeInSandbox.probe_timeout=N.
# (Configured below, once the grader is importable.)

# A test cell the student deleted is put back (and graded); edited locked cells get their
# source back from the gradebook anyway (checksums).
c.OverwriteCells.add_missing_cells = True

# `nbgrader export` writes the totals here (one row per student and assignment).
c.ExportPlugin.to = os.path.join(HERE, DATA, "grades.csv")

# Feedback: no hidden test source, no traceback quoting it, hidden checks' messages only if
# BNLAB_HIDDEN_FEEDBACK=message (or --HideHiddenTests.hidden_feedback=message; default: score only).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

try:
    from autograder.instructor.nbgrader_autograde import autograde_preprocessors, start_grading
    from autograder.instructor.nbgrader_hooks import HideHiddenTests
except ImportError:  # a course folder without the grader (the release build's test): no hidden checks,
    # no key; nbgrader's kernel would run the test cells, which cannot import the grader: all zero
    from nbgrader.preprocessors import ClearHiddenTests as HideHiddenTests
else:
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    # Grading starts as nbgrader turns to a submission, beside its own bookkeeping.
    c.Autograde.pre_convert_hook = start_grading

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

"""nbgrader configuration of the bnlab course (the repository root is the course directory).

    PATH=.venv/bin:$PATH nbgrader generate_assignment bn_resnet_densenet --force
    (or: python -m autograder build-release, which also regenerates the test cells)
"""
import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "bnlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook", "gradebook.db")
# "autograder": a submission may not bring its own grader package (the hidden test cells import
# `autograder`, and the submission's folder comes first on the kernel's sys.path).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache", "autograder"]
os.makedirs(os.path.join(HERE, "gradebook"), exist_ok=True)

"""`pytest` in this folder grades the notebooks here with the public checks.

The hooks live in bnlab_public/pytest_plugin.py (a copy of the course's grader
without its hidden checks). Run `pytest -q`, or `pytest 04_quiz.ipynb` for one notebook.
"""
from bnlab_public.pytest_plugin import *  # noqa: F401,F403

"""Every WRONG variant loses at least one check of its piece; every RIGHT variant scores like the reference."""
import importlib
import pkgutil
import os

import pytest

from autograder import course
from conftest import grade_path

HERE = os.path.dirname(__file__)
MODULES = [importlib.import_module(m.name) for m in pkgutil.iter_modules([HERE]) if m.name.startswith("variants_")]
WRONG = [v for m in MODULES for v in m.WRONG]
RIGHT = [v for m in MODULES for v in m.RIGHT]


def test_catalogue_ids_are_unique():
    ids = [v.id for v in WRONG + RIGHT]
    assert len(ids) == len(set(ids))


def test_reference_scores_full_marks(reference_results):
    failed = {i: r.message for i, r in reference_results.items() if not r.passed}
    assert not failed


@pytest.mark.parametrize("variant", WRONG, ids=[v.id for v in WRONG])
def test_wrong_variant_loses_points(variant, tmp_path):
    results = grade_path(variant.write(str(tmp_path)), only=[variant.piece])
    failed = [r for r in results.values() if not r.passed]
    assert failed, f"{variant.id} ({variant.why}) passed every {variant.piece} check"
    for r in failed:
        assert r.message and "grader could not finish" not in r.message, (r.id, r.message)
    # feedback accuracy: the first failing check (canonical order) names the mistake
    assert variant.keyword, f"{variant.id}: give the variant a keyword its first message must name"
    assert variant.keyword.lower() in failed[0].message.lower(), (variant.id, failed[0].id, failed[0].message)


@pytest.mark.parametrize("variant", RIGHT, ids=[v.id for v in RIGHT])
def test_right_variant_scores_like_reference(variant, tmp_path, reference_results):
    # A variant changes one piece; every check that can run that piece's code is graded. The training run
    # (seconds, and it runs only BatchNorm and what BatchNorm calls) is left out for the other pieces.
    skip = {p for p in course.OWN_WORKER_PIECES if variant.piece not in runs(p)}
    results = grade_path(variant.write(str(tmp_path)), only=[p for p in course.PIECES if p not in skip])
    expected = {i: r.score for i, r in reference_results.items() if r.piece not in skip}
    assert {i: r.score for i, r in results.items()} == expected, \
        {i: r.message for i, r in results.items() if not r.passed}


def runs(piece):
    """``piece`` and every piece whose code it runs (course.RUNS_ON / MAY_RUN, followed through)."""
    found, todo = set(), [piece]
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo += list(course.RUNS_ON.get(p, ())) + list(course.MAY_RUN.get(p, ()))
    return found


def test_runs_follows_the_course_facts():
    assert runs("training") == {"training", "BatchNorm", "batch_norm"}
    assert runs("Residual") == {"Residual"}

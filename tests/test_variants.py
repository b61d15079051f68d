"""Every WRONG variant loses at least one check of its piece; every RIGHT variant scores like the reference."""
import importlib
import pkgutil
import os

import pytest

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
    results = grade_path(variant.write(str(tmp_path)))
    assert {i: r.score for i, r in results.items()} == {i: r.score for i, r in reference_results.items()}, \
        {i: r.message for i, r in results.items() if not r.passed}

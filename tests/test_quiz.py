"""The quiz checks one by one: the public format check and the hidden per-question checks."""
import pytest

from conftest import grade_path
from autograder.hidden.quiz_key import KEY

QUESTIONS = [f"q{i}" for i in range(1, 11)]


def grade_answers(tmp_path, source):
    path = tmp_path / "answers.py"
    path.write_text(source, encoding="utf-8")
    return grade_path(str(path), only=["quiz"])


def answers_source(**changes):
    answers = dict(KEY, **changes)
    answers = {k: v for k, v in answers.items() if v is not None}
    return f"QUIZ_ANSWERS = {answers!r}\n"


def failed(results):
    return {i for i, r in results.items() if not r.passed}


def test_right_answers_pass_everything(tmp_path):
    results = grade_answers(tmp_path, answers_source())
    assert set(results) == {"quiz.answers_well_formed"} | {f"quiz.{q}" for q in QUESTIONS}
    assert not failed(results)


def test_wrong_answer_fails_only_its_question_without_giving_the_key(tmp_path):
    wrong = "A" if KEY["q3"] != "A" else "B"
    results = grade_answers(tmp_path, answers_source(q3=wrong))
    assert failed(results) == {"quiz.q3"}
    message = results["quiz.q3"].message
    assert "q3" in message and "not the right answer" in message and "Hint" in message
    assert f"is {KEY['q3']}" not in message and f"'{KEY['q3']}'" not in message


def test_missing_key_fails_the_format_check_and_its_question(tmp_path):
    results = grade_answers(tmp_path, answers_source(q7=None))
    assert failed(results) == {"quiz.answers_well_formed", "quiz.q7"}
    assert "q7" in results["quiz.answers_well_formed"].message and "missing" in results["quiz.answers_well_formed"].message
    assert "no answer for q7" in results["quiz.q7"].message


def test_lower_case_and_spaces_are_accepted(tmp_path):
    source = "QUIZ_ANSWERS = " + repr({q: f"  {v.lower()} " for q, v in KEY.items()}) + "\n"
    assert not failed(grade_answers(tmp_path, source))


@pytest.mark.parametrize("value", ["1", "AB", "E", "?", 3, None])
def test_non_letters_are_rejected(tmp_path, value):
    source = "QUIZ_ANSWERS = " + repr(dict(KEY, q2=value)) + "\n"
    results = grade_answers(tmp_path, source)
    assert failed(results) == {"quiz.answers_well_formed", "quiz.q2"}
    assert "q2" in results["quiz.answers_well_formed"].message
    assert "not one of the letters A, B, C, D" in results["quiz.q2"].message


def test_untouched_answers_say_not_implemented(tmp_path):
    results = grade_answers(tmp_path, "QUIZ_ANSWERS = " + repr({q: "" for q in QUESTIONS}) + "\n")
    assert failed(results) == set(results)
    assert "not implemented yet" in results["quiz.answers_well_formed"].message


@pytest.mark.parametrize("source, expected", [
    ("QUIZ_ANSWERS = ['D', 'B']\n", "expected a dict"),
    ("x = 1\n", "not defined"),
])
def test_not_a_dict_or_undefined(tmp_path, source, expected):
    results = grade_answers(tmp_path, source)
    assert failed(results) == set(results)
    assert expected in results["quiz.answers_well_formed"].message

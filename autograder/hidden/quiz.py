"""Hidden quiz checks: one per question, 1 point each (``quiz.q1`` .. ``quiz.q10``).

A wrong answer's message names the question and points at the concept to
revisit; it never gives the right letter.
"""
from ..core.check import Fail, check, describe
from ..checks.quiz import QUESTIONS, OPTIONS, normalise, read_answers
from .quiz_key import HINTS, KEY


def question_check(q):
    @check(f"quiz.{q}", "quiz", 1, f"quiz question {q} answered correctly", hidden=True)
    def judge(student):
        answers = read_answers(student)
        if q not in answers:
            raise Fail(f"QUIZ_ANSWERS has no answer for {q}.")
        value = answers[q]
        letter = normalise(value)
        if letter is None or letter not in OPTIONS[q]:
            shown = repr(value) if type(value) in (str, int, float, bool) else describe(value)
            raise Fail(f"{q}: {shown} is not one of the letters {', '.join(OPTIONS[q])}.")
        if letter != KEY[q]:
            raise Fail(f"{q}: {letter} is not the right answer. Hint: {HINTS[q]}")
    return judge


for _q in QUESTIONS:
    question_check(_q)

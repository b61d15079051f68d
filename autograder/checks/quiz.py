"""Public check of the quiz: ``QUIZ_ANSWERS`` is well formed (never whether an answer is right).

``QUIZ_ANSWERS = {"q1": <letter>, ..., "q10": <letter>}``: a dict with the keys q1..q10,
each value one option letter of that question. Lower-case letters and spaces
around them are accepted (``" b "`` reads as ``B``). Whether a letter is the
right one is judged by the hidden checks, one per question.
"""
from ..core.check import Fail, check, describe

QUESTIONS = tuple(f"q{i}" for i in range(1, 11))
OPTIONS = {q: "ABCD" for q in QUESTIONS}


def normalise(value):
    """The option letter a value stands for (``" b "`` -> ``"B"``), or None if it is not one letter."""
    if type(value) is not str:
        return None
    letter = value.strip().upper()
    return letter if len(letter) == 1 and "A" <= letter <= "Z" else None


def read_answers(student):
    """The student's QUIZ_ANSWERS as a dict, or Fail."""
    answers = student.probe("quiz")
    if type(answers) is not dict:
        raise Fail(f"QUIZ_ANSWERS: expected a dict like {{\"q1\": \"A\", \"q2\": \"C\", ...}}, got {describe(answers)}.")
    return answers


def problem(q, answers):
    """What is wrong with the answer to question q: (kind, text) or None."""
    if q not in answers:
        return "missing", q
    value = answers[q]
    if type(value) is str and not value.strip():
        return "blank", q
    letter = normalise(value)
    if letter is None or letter not in OPTIONS[q]:
        shown = repr(value) if type(value) in (str, int, float, bool) else describe(value)
        return "bad", f"{q} is {shown}, not one of the letters {', '.join(OPTIONS[q])}"
    return None


@check("quiz.answers_well_formed", "quiz", 1,
       "QUIZ_ANSWERS is a dict with one option letter for each of q1..q10")
def answers_well_formed(student):
    answers = read_answers(student)
    found = [p for p in (problem(q, answers) for q in QUESTIONS) if p]
    if not found:
        return
    parts = []
    blank = [text for kind, text in found if kind == "blank"]
    missing = [text for kind, text in found if kind == "missing"]
    if blank:
        parts.append(f"no answer yet for {', '.join(blank)} (not implemented yet: put one letter A-D "
                     f"between the quotes)")
    if missing:
        parts.append(f"the key(s) {', '.join(missing)} are missing")
    parts += [text for kind, text in found if kind == "bad"]
    extra = sorted(k for k in answers if k not in OPTIONS)
    if extra:
        parts.append(f"unexpected keys {extra} (the keys are lower-case q1 .. q10)")
    raise Fail("QUIZ_ANSWERS: " + "; ".join(parts) + ".")

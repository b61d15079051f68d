"""Quiz variants: answers that must lose points (WRONG) and answers written differently (RIGHT)."""
from variants import Variant

WRONG = [
    Variant("quiz_wrong_answer", "quiz", "q3 answered B instead of the right letter",
            replace=(('"q3": "C"', '"q3": "B"'),), keyword="deep CNN"),
    Variant("quiz_missing_key", "quiz", "q7 left out of the dict", replace=(('"q7": "C", ', ''),),
            keyword="q7 are missing"),
    Variant("quiz_non_letter", "quiz", "q2 answered with a digit", replace=(('"q2": "B"', '"q2": "2"'),),
            keyword="not one of the letters"),
    Variant("quiz_two_letters", "quiz", "q5 answered with two letters", replace=(('"q5": "D"', '"q5": "CD"'),),
            keyword="'CD', not one of the letters"),
    Variant("quiz_not_an_option", "quiz", "q1 answered E (options are A-D)", replace=(('"q1": "D"', '"q1": "E"'),),
            keyword="'E', not one of the letters"),
    Variant("quiz_number_value", "quiz", "q4 answered with the int 1", replace=(('"q4": "A"', '"q4": 1'),),
            keyword="q4 is 1"),
    Variant("quiz_not_a_dict", "quiz", "QUIZ_ANSWERS is a list of letters",
            append="QUIZ_ANSWERS = list(QUIZ_ANSWERS.values())", keyword="expected a dict"),
    Variant("quiz_upper_case_keys", "quiz", "keys Q1..Q10 instead of q1..q10",
            append="QUIZ_ANSWERS = {k.upper(): v for k, v in QUIZ_ANSWERS.items()}", keyword="lower-case"),
    Variant("quiz_blank", "quiz", "the release's empty answers", append='QUIZ_ANSWERS = {k: "" for k in QUIZ_ANSWERS}',
            keyword="not implemented yet"),
    Variant("quiz_undefined", "quiz", "QUIZ_ANSWERS never defined", append="del QUIZ_ANSWERS", keyword="not defined"),
]

RIGHT = [
    Variant("quiz_lower_case_and_spaces", "quiz", "answers written ' d ' instead of 'D'",
            append='QUIZ_ANSWERS = {k: f" {v.lower()} " for k, v in QUIZ_ANSWERS.items()}'),
    Variant("quiz_reordered_extra_key", "quiz", "keys in another order, plus a note under an extra key",
            append='QUIZ_ANSWERS = dict(sorted(QUIZ_ANSWERS.items()), note="q8 was a guess")'),
    Variant("quiz_ordered_dict", "quiz", "QUIZ_ANSWERS an OrderedDict (a mapping, not a plain dict)",
            append="from collections import OrderedDict\nQUIZ_ANSWERS = OrderedDict(QUIZ_ANSWERS)"),
]

"""Variants of the reference solution: one mistake each (WRONG), or correct but written differently (RIGHT).

A variant is the reference (``tests/submissions/reference.py``) with text
replacements applied and/or code appended; code appended after the reference
redefines a name, so an alternative ``BatchNorm`` is just a new class at the end.
Each ``tests/variants_<piece>.py`` module lists ``WRONG`` and ``RIGHT`` variants;
``tests/test_variants.py`` grades them all.
"""
import dataclasses
import os

REFERENCE = os.path.join(os.path.dirname(__file__), "submissions", "reference.py")


@dataclasses.dataclass(frozen=True)
class Variant:
    id: str
    piece: str
    why: str
    replace: tuple = ()
    append: str = ""
    keyword: str = ""   # a word the first failing check's message must name (tests/test_variants.py)

    def source(self):
        with open(REFERENCE, encoding="utf-8") as f:
            text = f.read()
        for old, new in self.replace:
            count = text.count(old)
            if count != 1:
                raise AssertionError(f"variant {self.id}: {old!r} occurs {count} times in the reference")
            text = text.replace(old, new)
        return text + ("\n\n" + self.append if self.append else "")

    def write(self, folder):
        path = os.path.join(folder, f"{self.id}.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.source())
        return path

"""The class roster of a batch: who is in a submissions folder, and where each one's results go.

A student's name comes from an entry of the submissions folder (a sub-folder's name,
or a ``.py`` / ``.ipynb`` file's name without its extension), which the student may
choose: ``grades.csv.py``, ``..``-like names, odd unicode, undecodable bytes, control
characters, names differing only in case, 255-byte names. So:

- ``display_name`` (the name in grades.csv, the summary and the log) is printable
  text: undecodable bytes and control characters are written as escapes;
- ``discover`` makes the names unique (``alice/`` and ``alice.py`` are both kept);
- ``folder_name`` (the student's folder under ``OUT/students/``) is a short lowercase
  ASCII name that cannot be ``.``/``..``, hold a ``/``, or equal another student's
  folder, even on a case-insensitive file system: a name that is not already such a
  name gets a slug and a hash of the exact name. Outputs of the batch itself
  (grades.csv, summary.md ...) live beside ``students/``, never inside it.
"""
import hashlib
import os
import re
import unicodedata

SUBMISSION_SUFFIXES = (".py", ".ipynb")
STUDENTS = "students"                  # OUT/students/<folder>/results.json
PLAIN = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")  # used as it is (no dot: "x.py" stays apart from "x")
HASHED = re.compile(r".*-[0-9a-f]{16}")          # looks like a hashed name: always hashed itself
SLUG_CHARS = 40
HASH_CHARS = 16                        # 64 bits: no student can pick a name that lands on another's folder


def display_name(entry):
    """Printable text for a folder entry's name (str from os.listdir, maybe with surrogate escapes)."""
    text = entry.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in text)


def folder_name(student):
    """The student's folder under OUT/students/: ``student`` itself when it is a plain short
    lowercase name, else a slug plus a hash of the exact name."""
    if PLAIN.fullmatch(student) and not HASHED.fullmatch(student):
        return student
    ascii_text = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9_-]+", "_", ascii_text).strip("_-")[:SLUG_CHARS] or "student"
    digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).hexdigest()[:HASH_CHARS]
    return f"{slug}-{digest}"


def discover(folder):
    """[(student, path)] in name order: every visible sub-folder, .py or .ipynb file; names unique."""
    found, taken = [], set()
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.startswith((".", "_")):
            continue
        if os.path.isdir(path):
            stem = entry
        elif entry.endswith(SUBMISSION_SUFFIXES) and os.path.isfile(path):
            stem = os.path.splitext(entry)[0]
        else:
            continue
        student = display_name(stem)
        if student in taken:  # alice/ and alice.py: keep both, apart
            student = display_name(entry)
        number = 2
        while student in taken:  # names that only their escapes told apart
            student, number = f"{display_name(entry)} ({number})", number + 1
        taken.add(student)
        found.append((student, path))
    return found


def results_folder(out_dir, student):
    return os.path.join(out_dir, STUDENTS, folder_name(student))


def csv_cell(text):
    """A spreadsheet cell that is never read as a formula (a name such as ``=HYPERLINK(...)``)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

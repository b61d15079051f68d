"""Hostile (placed after the reference): walks the file system for the hidden checks,
the reference solution and the quiz key, and copies the key's answers if it finds it.
Its own quiz answers are blank. Expected: nothing found (no FOUND line in the output),
every quiz.qN check fails."""
import os


def looks_like_the_grader(path):
    return (path.endswith(("/quiz_key.py", "/autograder/hidden", "/submissions/reference.py", "/bnlab"))
            or (path.endswith("/autograder") and os.path.isdir(path)))


walked = 0
key = None
for top in ("/", os.path.expanduser("~"), "/work", "/autograder"):
    for folder, dirs, files in os.walk(top):
        if folder in ("/proc", "/sys", "/dev", "/usr"):
            dirs[:] = []
            continue
        if os.path.basename(os.path.dirname(folder)) == "site-packages" and not looks_like_the_grader(folder):
            dirs[:] = []  # third-party packages: only their top level matters here
        walked += len(files)
        for name in files + dirs:
            path = os.path.join(folder, name)
            if looks_like_the_grader(path):
                print("FOUND", path)
                if name == "quiz_key.py":
                    key = path
print("WALKED", walked)

QUIZ_ANSWERS = {f"q{i}": "" for i in range(1, 11)}
if key:
    namespace = {}
    exec(open(key).read(), namespace)
    for value in namespace.values():
        if isinstance(value, dict) and "q1" in value:
            QUIZ_ANSWERS = dict(value)

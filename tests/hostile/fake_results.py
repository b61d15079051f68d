"""Hostile (placed after the reference): a WRONG batch_norm that writes fake perfect
results.json files wherever a report usually goes, and prints one.
Expected: the grader's report is its own (batch_norm loses points); no fake file lands
where the host could mistake it for a report."""
import json
import os

FAKE = json.dumps({"score": 1000000, "tests": [{"name": "pwned", "score": 1000000, "max_score": 1}]})
PLACES = ["results.json", "../results.json", "../../results.json", "/autograder/results/results.json",
          "/tmp/results.json", "/tmp/r.json", os.path.expanduser("~/results.json"), "/results.json",
          "/work/main/results.json"]
for place in PLACES:
    try:
        os.makedirs(os.path.dirname(os.path.abspath(place)), exist_ok=True)
        with open(place, "w") as f:
            f.write(FAKE)
        print("WROTE", place)
    except OSError as exc:
        print("could not write", place, exc.strerror)
print(FAKE)


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):  # the mistake
    return X, moving_mean, moving_var

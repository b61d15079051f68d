"""The course's facts and settings, in one place.

Facts: the assignment, its pieces (what a check is about), the name each piece
is defined under in a submission, and the lesson notebook that holds each
piece's test cells. The release build, every door and the checks read them
from here (the student's process cannot import this module: the grader sends
it what it needs, e.g. the names to look for in the ``inventory`` probe).

Settings: every default of the grader and the environment variable that
overrides it. ``setting(name, flag)`` resolves one, in pytest-timeout's order:
the command-line flag when one was given, else the environment variable, else
the default; a value that does not parse raises ``SettingError`` naming its
source. Nothing else in the package reads a ``BNLAB_*`` variable.
"""
import dataclasses
import os

ASSIGNMENT = "bn_resnet_densenet"
VENDOR = "bnlab_public"          # the public copy of the grader inside the student release

PIECES = ("batch_norm", "BatchNorm", "Residual", "DenseBlock", "transition_block", "quiz", "training")

NAME_OF_PIECE = {               # what a submission defines for each piece (training uses BatchNorm)
    "batch_norm": "batch_norm",
    "BatchNorm": "BatchNorm",
    "Residual": "Residual",
    "DenseBlock": "DenseBlock",
    "transition_block": "transition_block",
    "quiz": "QUIZ_ANSWERS",
    "training": "BatchNorm",
}
EXPECTED_NAMES = tuple(dict.fromkeys(NAME_OF_PIECE.values()))

NOTEBOOK_OF_PIECE = {           # the lesson notebook whose test cells grade each piece
    "batch_norm": "01_batch_norm.ipynb",
    "BatchNorm": "01_batch_norm.ipynb",
    "training": "01_batch_norm.ipynb",
    "Residual": "02_resnet.ipynb",
    "DenseBlock": "03_densenet.ipynb",
    "transition_block": "03_densenet.ipynb",
    "quiz": "04_quiz.ipynb",
}
NOTEBOOKS = tuple(sorted(set(NOTEBOOK_OF_PIECE.values())))

# Pieces whose code runs another piece's. RUNS_ON: when that one timed out, these are not run at all
# (LeNet-BN trains with your BatchNorm: a BatchNorm that hung in its own checks hangs there too).
# MAY_RUN: when that one timed out, these are probed with at most SUSPECT_TIMEOUT_S seconds (d2l's
# BatchNorm calls batch_norm; one that does not answers in milliseconds).
RUNS_ON = {"training": ("BatchNorm",)}
MAY_RUN = {"BatchNorm": ("batch_norm",)}
SUSPECT_TIMEOUT_S = 5.0

# Pieces graded in a worker of their own, beside the others (``runner.grade_submission`` with
# ``side_worker``): the training run is most of the checks' time, and the other checks leave a core free.
# A second worker costs a second start (Python, torch, the submission's cells: ~2 s of CPU), so it is
# on by default only with SIDE_WORKER_CORES or more cores (benchmarks/grade_one.py on 2 cores: 2.02x a
# bare `import torch` with it, 1.91x without).
OWN_WORKER_PIECES = ("training",)
SIDE_WORKER_CORES = 4


def cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Setting:
    env: str                 # the environment variable that overrides the default
    default: object
    kind: type               # float, int, str or bool
    help: str
    choices: tuple = ()


SETTINGS = {
    "probe_timeout": Setting("BNLAB_PROBE_TIMEOUT", 30.0, float,   # the training probe: ~3 s idle, ~12 s busy
                             "seconds one probe (one call into the submission) may take"),
    "load_timeout": Setting("BNLAB_LOAD_TIMEOUT", 60.0, float,
                            "seconds to start the worker (Python + torch) and run the submission's cells, at least"),
    "time_limit": Setting("BNLAB_TIME_LIMIT", 600.0, float,
                          "seconds for one whole submission, loading included"),
    "device": Setting("BNLAB_DEVICE", "auto", str,
                      "where the training check trains: auto (the GPU when there is one), cpu or cuda",
                      ("auto", "cpu", "cuda")),
    "data": Setting("BNLAB_DATA", os.path.join("~", ".cache", "bnlab", "data"), str,
                    "where Fashion-MNIST's files are looked for (torchvision's FashionMNIST/raw layout)"),
    "download": Setting("BNLAB_DOWNLOAD", False, bool,
                        "1 lets grading download Fashion-MNIST; otherwise the offline synthetic set is used"),
    "side_worker": Setting("BNLAB_SIDE_WORKER", cores() >= SIDE_WORKER_CORES, bool,
                           f"grade the training checks in a second worker, beside the others (default: on with "
                           f"{SIDE_WORKER_CORES} or more cores; grade-batch turns it off, its pool fills the cores)"),
    "unsandboxed": Setting("BNLAB_UNSANDBOXED", False, bool,
                           "grade even where the sandbox's private file system cannot be built (trusted code only)"),
    "hidden_feedback": Setting("BNLAB_HIDDEN_FEEDBACK", "score", str,
                               "what a student sees of a hidden check in every door (nbgrader feedback, Gradescope, "
                               "the GitHub Actions summary): score (name, pass/fail, points) or message (also its "
                               "message, which names the input that broke the code)", ("score", "message")),
    "debug": Setting("BNLAB_DEBUG", False, bool,
                     "1 prints the grader's own tracebacks (a check the grader could not finish)"),
    "gradescope_root": Setting("BNLAB_AUTOGRADER_ROOT", "/autograder", str,
                               "Gradescope's folder layout (submission/, results/); moved for a local test"),
}


class SettingError(ValueError):
    """A flag or environment variable holds a value the setting cannot take; the message names it."""


def convert(name, raw, source):
    s = SETTINGS[name]
    if s.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingError(f"{source}={raw!r}: expected 1 or 0")
    try:
        value = s.kind(raw.strip().lower() if isinstance(raw, str) and s.choices else raw)
    except (TypeError, ValueError):
        raise SettingError(f"{source}={raw!r}: expected a {s.kind.__name__}") from None
    if s.choices and value not in s.choices:
        raise SettingError(f"{source}={raw!r}: expected one of {', '.join(s.choices)}")
    if s.kind in (int, float) and not value > 0:
        raise SettingError(f"{source}={raw!r}: expected a positive number")
    return value


def setting(name, flag=None):
    """The value of setting ``name``: ``flag`` if not None, else ``$ENV`` if set and not empty, else the default."""
    s = SETTINGS[name]
    if flag is not None:
        return convert(name, flag, f"--{name.replace('_', '-')}")
    raw = os.environ.get(s.env)
    if raw is not None and raw.strip() != "":
        return convert(name, raw, f"${s.env}")
    return s.default

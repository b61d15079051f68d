#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image
# (working directory: /autograder/source, where the zip was unpacked).
# It installs Python and CPU-only torch / torchvision (the versions this grader was tested
# with; the students' requirements.txt and the GitHub Actions template pin the same) into
# /autograder/venv; the grader itself needs nothing else (it runs from /autograder/source/autograder).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --no-cache-dir --upgrade pip
/autograder/venv/bin/python -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
    "torch==@TORCH_VERSION@" "torchvision==@TORCHVISION_VERSION@"
/autograder/venv/bin/python -m pip install --no-cache-dir numpy
# The student's code runs as an unprivileged uid of its own: Python and the venv must be readable by everyone ...
chmod -R a+rX /autograder/venv
# ... and the hidden checks, the quiz key and the rubric by root only.
chown -R root:root /autograder/source
chmod -R go-rwx /autograder/source/autograder/hidden /autograder/source/bnlab_rubric.json
id nobody >/dev/null
/autograder/venv/bin/python -c "import torch; print('torch', torch.__version__, 'ready')"

#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image
# (working directory: /autograder/source, where the zip was unpacked).
# It installs Python and a CPU-only torch into /autograder/venv; the grader itself
# needs nothing else (it runs from /autograder/source/autograder).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --no-cache-dir --upgrade pip
/autograder/venv/bin/python -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
    "torch==@TORCH_VERSION@"
/autograder/venv/bin/python -m pip install --no-cache-dir numpy
/autograder/venv/bin/python -c "import torch; print('torch', torch.__version__, 'ready')"

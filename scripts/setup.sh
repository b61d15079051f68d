#!/usr/bin/env bash
# Create .venv and install everything the project needs (idempotent; re-runs when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    # torch and torchvision as a known-good pair first, then the project and the rest of its dependencies.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
    .venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
    touch "$stamp"
fi

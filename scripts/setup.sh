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
    # torch and torchvision as a known-good pair, with the project and the rest of its dependencies, in one
    # resolution. pip byte-compiles one file at a time (27 s of the 55 s torch alone takes here, on 2 cores):
    # it is told not to, and compileall does it on every core (the tests start many Python processes, and
    # PYTHONDONTWRITEBYTECODE may be set, so nothing may be left to compile at import).
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile \
        torch==2.14.1 torchvision==0.29.1 -e .
    # (Its status is not checked: like pip, it skips the files in a newer Python's syntax that torch ships.)
    .venv/bin/python -m compileall -q -j 0 "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1 || true
    .venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
    touch "$stamp"
fi

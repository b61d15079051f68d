#!/usr/bin/env bash
# Set up (if needed) and run the project's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# One test process per core (pytest-xdist); a test file's expensive module fixtures stay in one
# process where the file asks for it (pytest.mark.xdist_group). BNLAB_TEST_WORKERS=0 runs serially.
exec python -m pytest -n "${BNLAB_TEST_WORKERS:-auto}" --dist loadgroup "$@"

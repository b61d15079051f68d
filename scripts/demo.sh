#!/usr/bin/env bash
# Set up (if needed), then grade the reference solution and the untouched student release.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p out
echo "== reference solution (solutions/bn_resnet_densenet) =="
python -m autograder grade solutions/bn_resnet_densenet --results out/reference.json --junit out/reference.xml
echo
echo "== untouched student release (assignments/bn_resnet_densenet) =="
python -m autograder grade assignments/bn_resnet_densenet --results out/release.json --junit out/release.xml
echo
echo "reports: out/reference.json out/release.json (Gradescope), out/*.xml (JUnit)"

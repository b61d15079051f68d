"""Hostile (placed before the reference): sys.exit(0) while loading.
Expected: the grader is not ended; every check fails and names SystemExit."""
import sys

sys.exit(0)

"""Hostile (placed before the reference): os._exit(0) while loading kills the worker.
Expected: every check fails quickly ("exited ... while loading"), no restart per check."""
import os

os._exit(0)

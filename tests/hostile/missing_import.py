"""Hostile (placed before the reference): imports a module that does not exist.
Expected: every check fails and the message says which module is missing."""
import bnlab_no_such_module  # noqa: F401

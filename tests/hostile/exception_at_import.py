"""Hostile (placed before the reference): raises while the file is loaded.
Expected: every check fails and the message carries the exception."""
raise RuntimeError("boom while importing the submission")

"""Hostile (placed before the reference): raises KeyboardInterrupt at import. The loader lets a ^C through (so
that a student can stop the in-process doors), so the worker dies of SIGINT while loading.
Expected: every check fails with a message that says the process was interrupted (not "out of memory")."""
raise KeyboardInterrupt("at import")

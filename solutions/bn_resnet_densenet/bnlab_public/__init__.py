"""bnlab's autograder: checks written once, run by pytest, nbgrader and the CLI."""

"""Code that may run inside the student's process.

Nothing in this package may import the checks, the hidden checks or the quiz
key: the sandbox copies only this package next to the submission.
"""

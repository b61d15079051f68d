"""Hostile (placed after the reference): correct code that prints about 50 MB.
Expected: full marks; the report stays under 1 MB with the output truncated."""
_line = "spam " * 200_000  # 1 MB

for _ in range(30):
    print(_line)

_reference_batch_norm = batch_norm  # noqa: F821 (defined by the reference above)


def batch_norm(*args, **kwargs):
    for _ in range(2):
        print(_line, flush=True)
    return _reference_batch_norm(*args, **kwargs)

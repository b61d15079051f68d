"""Hostile (placed after the reference): every call of batch_norm and of BatchNorm's forward sleeps just
under the probe timeout (graded with --probe-timeout 600), then answers correctly.
Expected with --time-limit 5: grading ends within a few seconds of 5 s (plus starting the box); every check
says that the time limit ran out."""
import time

_reference_batch_norm, _ReferenceBatchNorm = batch_norm, BatchNorm  # noqa: F821
NAP = 590.0


def batch_norm(*args, **kwargs):
    time.sleep(NAP)
    return _reference_batch_norm(*args, **kwargs)


class BatchNorm(_ReferenceBatchNorm):
    def forward(self, X):
        time.sleep(NAP)
        return super().forward(X)

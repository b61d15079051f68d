"""Hostile (placed after the reference): a Residual that uses ONE batch norm in both positions (a real
mistake), plus a wrapper at import around the grader's forward probe that rewrites the trace records so
that every layer looks distinct.
Expected: FLAGGED, and every Residual check that relies on the trace scores zero."""
import sys

from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride) if use_1x1conv else None
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, X):
        Y = F.relu(self.bn(self.conv1(X)))
        Y = self.bn(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return F.relu(Y + X)


def _renumber(records):
    for n, record in enumerate(records):
        if isinstance(record, dict):
            for key in ("id", "module", "module_id", "layer"):
                if isinstance(record.get(key), int):
                    record[key] = 1000 + n
    return records


for _name, _module in list(sys.modules.items()):
    if _name.endswith(".probes") and hasattr(_module, "forward"):
        def _forward(module, op, _original=_module.forward):
            result = _original(module, op)
            if isinstance(result, dict) and isinstance(result.get("trace"), list):
                result["trace"] = _renumber(result["trace"])
            return result
        _module.forward = _forward

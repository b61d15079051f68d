"""transition_block: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "transition_block"
POOL = "nn.AvgPool2d(kernel_size=2, stride=2))"
BODY = ("    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),\n"
        "                         nn.Conv2d(in_channels, out_channels, kernel_size=1),\n"
        "                         nn.AvgPool2d(kernel_size=2, stride=2))")

WRONG = [
    Variant("transition_maxpool", P, "max pooling instead of average pooling",
            replace=((POOL, "nn.MaxPool2d(kernel_size=2, stride=2))"),), keyword='max pooling'),
    Variant("transition_no_relu", P, "BN → conv1x1 → pool, no ReLU",
            replace=((BODY, BODY.replace(" nn.ReLU(),", "")),), keyword='ReLU'),
    Variant("transition_pool_first", P, "pools first: AvgPool → BN → ReLU → conv1x1",
            replace=((BODY, "    return nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2), nn.BatchNorm2d(in_channels),\n"
                            "                         nn.ReLU(), nn.Conv2d(in_channels, out_channels, kernel_size=1))"),), keyword='pooling runs first'),
    Variant("transition_conv3x3", P, "3x3 conv (padding 1) instead of 1x1: same shapes",
            replace=(("nn.Conv2d(in_channels, out_channels, kernel_size=1),",
                      "nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),"),), keyword='1x1'),
    Variant("transition_halves_itself", P, "halves the channels itself, ignoring out_channels",
            replace=(("nn.Conv2d(in_channels, out_channels, kernel_size=1),",
                      "nn.Conv2d(in_channels, in_channels // 2, kernel_size=1),"),), keyword='out_channels'),
    Variant("transition_bn_after_conv", P, "conv1x1 → BN → ReLU → pool",
            replace=((BODY, "    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1),\n"
                            "                         nn.BatchNorm2d(out_channels), nn.ReLU(),\n"
                            "                         nn.AvgPool2d(kernel_size=2, stride=2))"),), keyword='after the conv'),
    # ---- modelled on public code styles (issue 9) ----
    Variant("transition_functional_maxpool", P, "module with a functional forward that max-pools (F.max_pool2d)",
            keyword="max pooling", append='''
class Transition(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, X):
        return F.max_pool2d(self.conv(F.relu(self.bn(X))), 2)


def transition_block(in_channels, out_channels):
    return Transition(in_channels, out_channels)
'''),
    Variant("transition_plain_attribute_stats", P, "F.batch_norm on running statistics kept as plain attributes made "
            "on the CPU: right on the CPU, broken once moved to another device", keyword="device", append='''
class Transition(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(in_channels))
        self.beta = nn.Parameter(torch.zeros(in_channels))
        self.running_mean = torch.zeros(in_channels)
        self.running_var = torch.ones(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, X):
        X = F.batch_norm(X, self.running_mean, self.running_var, self.gamma, self.beta, self.training)
        return F.avg_pool2d(self.conv(F.relu(X)), kernel_size=2, stride=2)


def transition_block(in_channels, out_channels):
    return Transition(in_channels, out_channels)
'''),
]

RIGHT = [
    Variant("transition_ordered_dict", P, "nn.Sequential(OrderedDict(...)), conv without bias", append='''
from collections import OrderedDict


def transition_block(in_channels, out_channels):
    return nn.Sequential(OrderedDict([
        ("norm", nn.BatchNorm2d(in_channels)),
        ("relu", nn.ReLU(inplace=True)),
        ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)),
        ("pool", nn.AvgPool2d(2)),
    ]))
'''),
    Variant("transition_module_class", P, "a small nn.Module class returned by the function, own BatchNorm, "
            "functional ReLU and pooling", append='''
class Transition(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.bn = BatchNorm(in_channels, 4)
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, X):
        return F.avg_pool2d(self.conv(F.relu(self.bn(X))), kernel_size=2, stride=2)


def transition_block(in_channels, out_channels):
    return Transition(in_channels, out_channels)
'''),
    Variant("transition_pool_before_conv", P, "BN → ReLU → AvgPool → conv1x1: the same function, since a 1x1 conv "
            "and 2x2 average pooling commute (both are linear, one per pixel, one per channel)", replace=(
        (BODY, "    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),\n"
               "                         nn.AvgPool2d(kernel_size=2, stride=2),\n"
               "                         nn.Conv2d(in_channels, out_channels, kernel_size=1))"),)),
    # ---- modelled on public code styles (issue 9) ----
    Variant("transition_sequential_subclass", P, "torchvision's _Transition: an nn.Sequential subclass filled with "
            "add_module, conv without bias", append='''
class _Transition(nn.Sequential):
    def __init__(self, num_input_features, num_output_features):
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(num_input_features))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1,
                                          bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


def transition_block(in_channels, out_channels):
    return _Transition(in_channels, out_channels)
'''),
    Variant("transition_lazy_layers", P, "d2l's own style: nn.LazyBatchNorm2d and nn.LazyConv2d (in_channels unused)",
            append='''
def transition_block(in_channels, out_channels):
    return nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(out_channels, kernel_size=1),
                         nn.AvgPool2d(kernel_size=2, stride=2))
'''),
]

"""DenseBlock: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "DenseBlock"
CAT = "X = torch.cat((X, Y), dim=1)"
NET = "self.net = nn.ModuleList([conv_block(in_channels + i * out_channels, out_channels) for i in range(num_convs)])"

WRONG = [
    Variant("DenseBlock_cat_output_first", P, "torch.cat((Y, X)): the new features before the input",
            replace=((CAT, "X = torch.cat((Y, X), dim=1)"),), keyword='input comes first'),
    Variant("DenseBlock_feeds_last_only", P, "each conv block sees only the previous block's output "
            "(a plain chain), all outputs concatenated at the end", replace=(
                (NET, "self.net = nn.ModuleList([conv_block(in_channels if i == 0 else out_channels, out_channels) "
                      "for i in range(num_convs)])"),
                ("        for blk in self.net:\n            Y = blk(X)\n            X = torch.cat((X, Y), dim=1)\n"
                 "        return X",
                 "        outs, Y = [X], X\n        for blk in self.net:\n            Y = blk(Y)\n"
                 "            outs.append(Y)\n        return torch.cat(outs, dim=1)")), keyword='all channels so far'),
    Variant("DenseBlock_wrong_out_channels", P, "out_channels = num_convs * out_channels (forgets the input)",
            replace=(("self.out_channels = in_channels + num_convs * out_channels",
                      "self.out_channels = num_convs * out_channels"),), keyword='out_channels'),
    Variant("DenseBlock_returns_last_output", P, "returns only the last conv block's output",
            replace=(("            X = torch.cat((X, Y), dim=1)\n        return X",
                      "            X = torch.cat((X, Y), dim=1)\n        return Y"),), keyword='only the last'),
    Variant("DenseBlock_conv_bn_relu", P, "conv block in the order conv → BN → ReLU", replace=(
        ("return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),\n"
         "                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))",
         "return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),\n"
         "                         nn.BatchNorm2d(out_channels), nn.ReLU())"),), keyword='after its convolution'),
    Variant("DenseBlock_python_list", P, "conv blocks in a plain Python list: not registered",
            replace=((NET, "self.net = [conv_block(in_channels + i * out_channels, out_channels) for i in range(num_convs)]"),), keyword='registered'),
    Variant("DenseBlock_detached_features", P, "concatenates Y.detach() 'to save memory': same values, "
            "no gradient reaches the convs", replace=((CAT, "X = torch.cat((X, Y.detach()), dim=1)"),), keyword='gradient'),
    Variant("DenseBlock_no_relu", P, "conv block without the ReLU", replace=(
        ("return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),\n"
         "                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))",
         "return nn.Sequential(nn.BatchNorm2d(in_channels),\n"
         "                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))"),), keyword='ReLU'),
    # ---- modelled on public code styles (issue 9) ----
    Variant("DenseBlock_densenet_bc_bottleneck", P, "DenseNet-BC layer: BN → ReLU → conv1x1(4·growth) → BN → ReLU → "
            "conv3x3; right for DenseNet-BC, not the lesson's conv block", keyword="bottleneck", append='''
class _DenseLayer(nn.Module):
    def __init__(self, num_input_features, growth_rate, bn_size=4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, prev_features):
        concated = torch.cat(prev_features, 1)
        bottleneck = self.conv1(self.relu1(self.norm1(concated)))
        return self.conv2(self.relu2(self.norm2(bottleneck)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, num_convs, in_channels, out_channels):
        super().__init__()
        for i in range(num_convs):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(in_channels + i * out_channels, out_channels))
        self.out_channels = in_channels + num_convs * out_channels

    def forward(self, init_features):
        features = [init_features]
        for name, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)
'''),
    Variant("DenseBlock_cat_default_dim", P, "torch.cat([X, Y]) without dim: concatenates along the batch",
            keyword="dim=1", replace=((CAT, "X = torch.cat([X, Y])"),)),
    Variant("DenseBlock_input_plus_last_only", P, "a plain chain of conv blocks; the input concatenated with only "
            "the last block's output", keyword="only the last", replace=(
                (NET, "self.net = nn.ModuleList([conv_block(in_channels if i == 0 else out_channels, out_channels) "
                      "for i in range(num_convs)])"),
                ("        for blk in self.net:\n            Y = blk(X)\n            X = torch.cat((X, Y), dim=1)\n"
                 "        return X",
                 "        Y = X\n        for blk in self.net:\n            Y = blk(Y)\n"
                 "        return torch.cat((X, Y), dim=1)"))),
]

RIGHT = [
    Variant("DenseBlock_sequential_other_names", P, "nn.Sequential of blocks, other names, convs without bias",
            append='''
class DenseBlock(nn.Module):
    def __init__(self, num_convs, input_channels, num_channels):
        super().__init__()
        self.layers = nn.Sequential(*[
            nn.Sequential(nn.BatchNorm2d(input_channels + k * num_channels), nn.ReLU(inplace=True),
                          nn.Conv2d(input_channels + k * num_channels, num_channels, 3, padding=1, bias=False))
            for k in range(num_convs)])
        self.out_channels = input_channels + num_convs * num_channels

    def forward(self, X):
        for layer in self.layers:
            X = torch.cat([X, layer(X)], 1)
        return X
'''),
    Variant("DenseBlock_feature_list_own_bn", P, "keeps a list of features and concatenates it each time; own BatchNorm",
            append='''
class DenseBlock(nn.Module):
    def __init__(self, num_convs, in_channels, out_channels):
        super().__init__()
        self.norms = nn.ModuleList()
        self.convs = nn.ModuleList()
        for i in range(num_convs):
            c = in_channels + i * out_channels
            self.norms.append(BatchNorm(c, 4))
            self.convs.append(nn.Conv2d(c, out_channels, kernel_size=3, padding=1))
        self.out_channels = in_channels + num_convs * out_channels

    def forward(self, X):
        features = [X]
        for norm, conv in zip(self.norms, self.convs):
            features.append(conv(F.relu(norm(torch.cat(features, dim=1)))))
        return torch.cat(features, dim=1)
'''),
    # ---- modelled on public code styles (issue 9) ----
    Variant("DenseBlock_module_dict", P, "torchvision-style nn.ModuleDict subclass of named layers "
            "(OrderedDict Sequentials), feature list concatenated per layer", append='''
from collections import OrderedDict


class DenseBlock(nn.ModuleDict):
    def __init__(self, num_convs, in_channels, out_channels):
        super().__init__()
        for i in range(num_convs):
            c = in_channels + i * out_channels
            self.add_module(f"denselayer{i + 1}", nn.Sequential(OrderedDict([
                ("norm", nn.BatchNorm2d(c)), ("relu", nn.ReLU(inplace=True)),
                ("conv", nn.Conv2d(c, out_channels, kernel_size=3, padding=1, bias=False))])))
        self.out_channels = in_channels + num_convs * out_channels

    def forward(self, X):
        features = [X]
        for _, layer in self.items():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)
'''),
    Variant("DenseBlock_functional", P, "MAML-style functional block: ParameterLists, registered running-stat "
            "buffers, F.batch_norm and F.conv2d without bias", append='''
class DenseBlock(nn.Module):
    def __init__(self, num_convs, in_channels, out_channels):
        super().__init__()
        sizes = [in_channels + i * out_channels for i in range(num_convs)]
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(out_channels, c, 3, 3) * (2.0 / (9 * c)) ** 0.5)
                                         for c in sizes])
        self.gammas = nn.ParameterList([nn.Parameter(torch.ones(c)) for c in sizes])
        self.betas = nn.ParameterList([nn.Parameter(torch.zeros(c)) for c in sizes])
        for i, c in enumerate(sizes):
            self.register_buffer(f"mean{i}", torch.zeros(c))
            self.register_buffer(f"var{i}", torch.ones(c))
        self.num_convs = num_convs
        self.out_channels = in_channels + num_convs * out_channels

    def forward(self, X):
        for i in range(self.num_convs):
            Y = F.batch_norm(X, getattr(self, f"mean{i}"), getattr(self, f"var{i}"), self.gammas[i], self.betas[i],
                             training=self.training, momentum=0.1, eps=1e-5)
            X = torch.cat((X, F.conv2d(F.relu(Y), self.weights[i], padding=1)), dim=1)
        return X
'''),
]

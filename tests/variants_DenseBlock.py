"""DenseBlock: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "DenseBlock"
CAT = "X = torch.cat((X, Y), dim=1)"
NET = "self.net = nn.ModuleList([conv_block(in_channels + i * out_channels, out_channels) for i in range(num_convs)])"

WRONG = [
    Variant("DenseBlock_cat_output_first", P, "torch.cat((Y, X)): the new features before the input",
            replace=((CAT, "X = torch.cat((Y, X), dim=1)"),)),
    Variant("DenseBlock_feeds_last_only", P, "each conv block sees only the previous block's output "
            "(a plain chain), all outputs concatenated at the end", replace=(
                (NET, "self.net = nn.ModuleList([conv_block(in_channels if i == 0 else out_channels, out_channels) "
                      "for i in range(num_convs)])"),
                ("        for blk in self.net:\n            Y = blk(X)\n            X = torch.cat((X, Y), dim=1)\n"
                 "        return X",
                 "        outs, Y = [X], X\n        for blk in self.net:\n            Y = blk(Y)\n"
                 "            outs.append(Y)\n        return torch.cat(outs, dim=1)"))),
    Variant("DenseBlock_wrong_out_channels", P, "out_channels = num_convs * out_channels (forgets the input)",
            replace=(("self.out_channels = in_channels + num_convs * out_channels",
                      "self.out_channels = num_convs * out_channels"),)),
    Variant("DenseBlock_returns_last_output", P, "returns only the last conv block's output",
            replace=(("            X = torch.cat((X, Y), dim=1)\n        return X",
                      "            X = torch.cat((X, Y), dim=1)\n        return Y"),)),
    Variant("DenseBlock_conv_bn_relu", P, "conv block in the order conv → BN → ReLU", replace=(
        ("return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),\n"
         "                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))",
         "return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),\n"
         "                         nn.BatchNorm2d(out_channels), nn.ReLU())"),)),
    Variant("DenseBlock_python_list", P, "conv blocks in a plain Python list: not registered",
            replace=((NET, "self.net = [conv_block(in_channels + i * out_channels, out_channels) for i in range(num_convs)]"),)),
    Variant("DenseBlock_detached_features", P, "concatenates Y.detach() 'to save memory': same values, "
            "no gradient reaches the convs", replace=((CAT, "X = torch.cat((X, Y.detach()), dim=1)"),)),
    Variant("DenseBlock_no_relu", P, "conv block without the ReLU", replace=(
        ("return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),\n"
         "                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))",
         "return nn.Sequential(nn.BatchNorm2d(in_channels),\n"
         "                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))"),)),
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
]

"""Residual: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "Residual"
MAIN2 = "Y = self.bn2(self.conv2(Y))"
OUT = "return F.relu(Y + X)"
CONV1 = "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)"
CONV2 = "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)"

WRONG = [
    Variant("Residual_relu_before_add", P, "ReLU on the main path before the addition, none after",
            replace=((MAIN2, "Y = F.relu(self.bn2(self.conv2(Y)))"), (OUT, "return Y + X"))),
    Variant("Residual_no_final_relu", P, "returns Y + X without the final ReLU",
            replace=((OUT, "return Y + X"),)),
    Variant("Residual_bn_after_add", P, "second BN applied to the sum instead of the main path",
            replace=((MAIN2, "Y = self.conv2(Y)"), (OUT, "return F.relu(self.bn2(Y + X))"))),
    Variant("Residual_no_inner_relu", P, "no ReLU between BN1 and conv2",
            replace=(("Y = F.relu(self.bn1(self.conv1(X)))", "Y = self.bn1(self.conv1(X))"),)),
    Variant("Residual_shortcut_no_stride", P, "1x1 shortcut conv without the stride: shapes do not add up",
            replace=(("nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)",
                      "nn.Conv2d(in_channels, out_channels, kernel_size=1)"),)),
    Variant("Residual_stride_on_conv2", P, "stride on the second 3x3 conv instead of the first (same shapes)",
            replace=((CONV1, "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)"),
                     (CONV2, "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, stride=stride)"))),
    Variant("Residual_bns_in_python_list", P, "BN layers kept in a plain Python list: not registered",
            replace=(("self.bn1 = nn.BatchNorm2d(out_channels)\n        self.bn2 = nn.BatchNorm2d(out_channels)",
                      "self.bns = [nn.BatchNorm2d(out_channels), nn.BatchNorm2d(out_channels)]"),
                     ("Y = F.relu(self.bn1(self.conv1(X)))", "Y = F.relu(self.bns[0](self.conv1(X)))"),
                     (MAIN2, "Y = self.bns[1](self.conv2(Y))"))),
    Variant("Residual_no_padding", P, "3x3 convs without padding: the block shrinks its input",
            replace=((CONV1, "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride)"),
                     (CONV2, "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3)"),
                     ("if self.conv3:\n            X = self.conv3(X)",
                      "if self.conv3:\n            X = self.conv3(X)\n        X = X[:, :, 2:-2, 2:-2]"))),
    Variant("Residual_ignores_stride", P, "never passes the stride on: the block cannot downsample",
            replace=((CONV1, "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)"),
                     ("nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)",
                      "nn.Conv2d(in_channels, out_channels, kernel_size=1)"))),
    Variant("Residual_main_path_data", P, "adds Y.data: same values, but no gradient reaches the main path's convs",
            replace=((OUT, "return F.relu(Y.data + X)"),)),
]

RIGHT = [
    Variant("Residual_d2l_english_names", P, "d2l English names, strides keyword, convs without bias", append='''
class Residual(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides, bias=False)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1, bias=False)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides, bias=False)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)
'''),
    Variant("Residual_sequential_own_bn", P, "nn.Sequential main path with the student's own BatchNorm(C, 4)", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1), BatchNorm(out_channels, 4), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1), BatchNorm(out_channels, 4))
        self.skip = nn.Conv2d(in_channels, out_channels, 1, stride) if use_1x1conv else nn.Identity()

    def forward(self, X):
        return torch.relu(self.main(X) + self.skip(X))
'''),
    Variant("Residual_shortcut_first_relu_modules", P, "shortcut computed first, nn.ReLU(inplace=True) modules, "
            "padding='same'", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, kernel_size=(1, 1), stride=(stride, stride)) \\
            if use_1x1conv else None
        self.c1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=(1, 1), stride=stride)
        self.n1 = nn.BatchNorm2d(out_channels)
        self.a1 = nn.ReLU(inplace=True)
        self.c2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding="same")
        self.n2 = nn.BatchNorm2d(out_channels)
        self.a2 = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.proj is None else self.proj(x)
        out = self.a1(self.n1(self.c1(x)))
        out = self.n2(self.c2(out))
        return self.a2(out + identity)
'''),
]

"""Residual: realistic mistakes (WRONG) and correct alternatives (RIGHT)."""
from variants import Variant

P = "Residual"
MAIN2 = "Y = self.bn2(self.conv2(Y))"
OUT = "return F.relu(Y + X)"
CONV1 = "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)"
CONV2 = "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)"

WRONG = [
    Variant("Residual_relu_before_add", P, "ReLU on the main path before the addition, none after",
            replace=((MAIN2, "Y = F.relu(self.bn2(self.conv2(Y)))"), (OUT, "return Y + X")), keyword='before the addition'),
    Variant("Residual_no_final_relu", P, "returns Y + X without the final ReLU",
            replace=((OUT, "return Y + X"),), keyword='final ReLU'),
    Variant("Residual_bn_after_add", P, "second BN applied to the sum instead of the main path",
            replace=((MAIN2, "Y = self.conv2(Y)"), (OUT, "return F.relu(self.bn2(Y + X))")), keyword='after the addition'),
    Variant("Residual_no_inner_relu", P, "no ReLU between BN1 and conv2",
            replace=(("Y = F.relu(self.bn1(self.conv1(X)))", "Y = self.bn1(self.conv1(X))"),), keyword='ReLU between the first BN'),
    Variant("Residual_shortcut_no_stride", P, "1x1 shortcut conv without the stride: shapes do not add up",
            replace=(("nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)",
                      "nn.Conv2d(in_channels, out_channels, kernel_size=1)"),), keyword='stride'),
    Variant("Residual_stride_on_conv2", P, "stride on the second 3x3 conv instead of the first (same shapes)",
            replace=((CONV1, "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)"),
                     (CONV2, "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, stride=stride)")), keyword='stride'),
    Variant("Residual_bns_in_python_list", P, "BN layers kept in a plain Python list: not registered",
            replace=(("self.bn1 = nn.BatchNorm2d(out_channels)\n        self.bn2 = nn.BatchNorm2d(out_channels)",
                      "self.bns = [nn.BatchNorm2d(out_channels), nn.BatchNorm2d(out_channels)]"),
                     ("Y = F.relu(self.bn1(self.conv1(X)))", "Y = F.relu(self.bns[0](self.conv1(X)))"),
                     (MAIN2, "Y = self.bns[1](self.conv2(Y))")), keyword='registered'),
    Variant("Residual_no_padding", P, "3x3 convs without padding: the block shrinks its input",
            replace=((CONV1, "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride)"),
                     (CONV2, "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3)"),
                     ("if self.conv3:\n            X = self.conv3(X)",
                      "if self.conv3:\n            X = self.conv3(X)\n        X = X[:, :, 2:-2, 2:-2]")), keyword='padding'),
    Variant("Residual_ignores_stride", P, "never passes the stride on: the block cannot downsample",
            replace=((CONV1, "self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)"),
                     ("nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)",
                      "nn.Conv2d(in_channels, out_channels, kernel_size=1)")), keyword='stride'),
    Variant("Residual_main_path_data", P, "adds Y.data: same values, but no gradient reaches the main path's convs",
            replace=((OUT, "return F.relu(Y.data + X)"),), keyword='gradient'),
    # ---- modelled on public code styles (issue 9) ----
    Variant("Residual_torchvision_basicblock", P, "torchvision's BasicBlock: downsample = Sequential(conv1x1, "
            "BatchNorm2d) when use_1x1conv. Judged WRONG for this exercise: d2l's Residual (the lesson's "
            "specification) adds conv1x1(X) with no BN on the shortcut", keyword="no BN on the shortcut", append='''
def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class Residual(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if use_1x1conv:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)
'''),
    Variant("Residual_preactivation", P, "pre-activation block (ResNet v2): BN → ReLU → conv twice, then add",
            keyword="pre-activation", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False) if use_1x1conv else None

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut
'''),
    Variant("Residual_shape_chosen_projection", P, "CIFAR-repo style: the 1x1 projection chosen by shape "
            "(in != out or stride != 1), use_1x1conv ignored", keyword="use_1x1conv", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.skip = (nn.Conv2d(in_channels, out_channels, 1, stride=stride)
                     if in_channels != out_channels or stride != 1 else nn.Identity())

    def forward(self, X):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X))))) + self.skip(X))
'''),
    Variant("Residual_bottleneck", P, "ResNet-50 bottleneck: 1x1 → 3x3 → 1x1 with BNs", keyword="bottleneck",
            append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        mid = max(out_channels // 4, 1)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.proj = nn.Conv2d(in_channels, out_channels, 1, stride=stride) if use_1x1conv else None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        return F.relu(Y + (self.proj(X) if self.proj is not None else X))
'''),
    Variant("Residual_plain_attribute_stats", P, "functional BN whose running statistics are plain tensor attributes "
            "made in __init__ on the CPU: right on the CPU, breaks once the block is moved to another device",
            keyword="device", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride) if use_1x1conv else None
        self.gammas = nn.ParameterList([nn.Parameter(torch.ones(out_channels)) for _ in range(2)])
        self.betas = nn.ParameterList([nn.Parameter(torch.zeros(out_channels)) for _ in range(2)])
        self.means = [torch.zeros(out_channels), torch.zeros(out_channels)]
        self.vars = [torch.ones(out_channels), torch.ones(out_channels)]

    def bn(self, i, Y):
        return F.batch_norm(Y, self.means[i], self.vars[i], self.gammas[i], self.betas[i], self.training)

    def forward(self, X):
        Y = F.relu(self.bn(0, self.conv1(X)))
        Y = self.bn(1, self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)
'''),
    Variant("Residual_leaky_relu", P, "GAN-style LeakyReLU after the first BN", keyword="leaky_relu", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1, stride) if use_1x1conv else None
        self.bn1, self.bn2 = nn.BatchNorm2d(out_channels), nn.BatchNorm2d(out_channels)
    def forward(self, X):
        Y = F.leaky_relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        return F.relu(Y + (self.conv3(X) if self.conv3 else X))
'''),
    Variant("Residual_one_bn_twice", P, "one BatchNorm2d module used after both convs", keyword="runs twice",
            append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1, stride) if use_1x1conv else None
        self.bn = nn.BatchNorm2d(out_channels)
    def forward(self, X):
        Y = F.relu(self.bn(self.conv1(X)))
        Y = self.bn(self.conv2(Y))
        return F.relu(Y + (self.conv3(X) if self.conv3 else X))
'''),
    Variant("Residual_shortcut_3x3", "Residual", "the use_1x1conv shortcut is a 3x3 conv with padding 1 (same "
            "shapes; found by tests/break: the message blamed the main path)",
            replace=(("self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)",
                      "self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)"),),
            keyword="shortcut's conv has the wrong kernel size"),
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
    # ---- modelled on public code styles (issue 9) ----
    Variant("Residual_functional_parameterlist", P, "MAML-style functional block: weights in nn.ParameterLists, "
            "F.conv2d and F.batch_norm in forward (issue 9's example)", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.stride = stride
        self.w = nn.ParameterList([nn.Parameter(torch.randn(out_channels, in_channels, 3, 3) * 0.1),
                                   nn.Parameter(torch.randn(out_channels, out_channels, 3, 3) * 0.1)])
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(out_channels)) for _ in range(2)])
        self.g = nn.ParameterList([nn.Parameter(torch.ones(out_channels)) for _ in range(2)])
        self.h = nn.ParameterList([nn.Parameter(torch.zeros(out_channels)) for _ in range(2)])
        for i in range(2):
            self.register_buffer(f"rm{i}", torch.zeros(out_channels))
            self.register_buffer(f"rv{i}", torch.ones(out_channels))
        self.proj = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1) * 0.1) if use_1x1conv else None

    def forward(self, X):
        Y = F.conv2d(X, self.w[0], self.b[0], stride=self.stride, padding=1)
        Y = F.relu(F.batch_norm(Y, self.rm0, self.rv0, self.g[0], self.h[0], self.training))
        Y = F.conv2d(Y, self.w[1], self.b[1], padding=1)
        Y = F.batch_norm(Y, self.rm1, self.rv1, self.g[1], self.h[1], self.training)
        if self.proj is not None:
            X = F.conv2d(X, self.proj, stride=self.stride)
        return F.relu(Y + X)
'''),
    Variant("Residual_lazy_layers", P, "nn.LazyConv2d / nn.LazyBatchNorm2d (d2l's own ResNet style), in_channels "
            "unused", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.LazyConv2d(out_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(out_channels, kernel_size=1, stride=stride) if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)
'''),
    Variant("Residual_autograd_function_bn", P, "its own BN module built on a custom torch.autograd.Function "
            "(hand-written backward), convs without bias", append='''
class _BNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        inv = 1.0 / torch.sqrt(var + eps)
        xhat = (x - mean) * inv
        ctx.save_for_backward(xhat, gamma, inv)
        return gamma.view(1, -1, 1, 1) * xhat + beta.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, dy):
        xhat, gamma, inv = ctx.saved_tensors
        m = dy.shape[0] * dy.shape[2] * dy.shape[3]
        dxhat = dy * gamma.view(1, -1, 1, 1)
        dx = inv / m * (m * dxhat - dxhat.sum(dim=(0, 2, 3), keepdim=True)
                        - xhat * (dxhat * xhat).sum(dim=(0, 2, 3), keepdim=True))
        return dx, (dy * xhat).sum(dim=(0, 2, 3)), dy.sum(dim=(0, 2, 3)), None


class FnBatchNorm(nn.Module):
    def __init__(self, channels, eps=1e-5, momentum=0.1):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.eps, self.momentum = eps, momentum

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.lerp_(x.mean(dim=(0, 2, 3)), self.momentum)
                self.running_var.lerp_(x.var(dim=(0, 2, 3)), self.momentum)
            return _BNFunction.apply(x, self.gamma, self.beta, self.eps)
        xhat = (x - self.running_mean.view(1, -1, 1, 1)) / torch.sqrt(self.running_var.view(1, -1, 1, 1) + self.eps)
        return self.gamma.view(1, -1, 1, 1) * xhat + self.beta.view(1, -1, 1, 1)


class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = FnBatchNorm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = FnBatchNorm(out_channels)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if use_1x1conv else None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        return F.relu(Y + (X if self.conv3 is None else self.conv3(X)))
'''),
    Variant("Residual_own_bn_on_views", P, "own BN module calling F.batch_norm on gamma.view(-1) (not leaf "
            "tensors), nn.Sequential body, empty nn.Sequential as the identity shortcut",
            append='''
class MyBN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, c, 1, 1)); self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.register_buffer("rm", torch.zeros(c)); self.register_buffer("rv", torch.ones(c))
    def forward(self, x):
        return F.batch_norm(x, self.rm, self.rv, self.gamma.view(-1), self.beta.view(-1), self.training, 0.1, 1e-5)
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), MyBN(out_channels), nn.ReLU(),
                                  nn.Conv2d(out_channels, out_channels, 3, 1, 1), MyBN(out_channels))
        self.short = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride)) if use_1x1conv else nn.Sequential()
    def forward(self, X):
        return F.relu(self.body(X) + self.short(X))
'''),
]

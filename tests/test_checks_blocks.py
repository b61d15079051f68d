"""The Residual / DenseBlock / transition_block checks and the shape tables, proved.

- the grader's float64 recomputation (autograder/reference/blocks.py) equals PyTorch's own modules run in float64;
- the architecture probe reproduces seed 002's tables for the reference;
- every WRONG variant of the three pieces fails the check it exists for, with the message that names it
  (shape mistakes get shape messages, value mistakes "recomputed from your own weights" and the mistake);
- every check of these pieces is shown failing by at least one submission (no check that cannot fail);
- untouched stubs get "not implemented yet".
"""
import importlib.util

import pytest
import torch

from conftest import REFERENCE, grade_path
from variants import Variant
import variants_DenseBlock
import variants_Residual
import variants_transition_block
from autograder.reference import blocks as rc
from autograder.core import runner
from autograder.hidden import shape_tables
from autograder.core.student import InProcessStudent

MINE = {
    "Residual.seed_same_shape", "Residual.seed_downsample_shape", "Residual.shapes", "Residual.values_identity",
    "Residual.values_projection", "Residual.use_1x1conv", "Residual.eval_mode", "Residual.gradients",
    "Residual.device", "Residual.resnet18_table",
    "DenseBlock.seed_shape", "DenseBlock.seed_out_channels", "DenseBlock.out_channels", "DenseBlock.values",
    "DenseBlock.eval_mode", "DenseBlock.gradients", "DenseBlock.device", "DenseBlock.densenet_table",
    "transition_block.seed_shape", "transition_block.shapes", "transition_block.values",
    "transition_block.eval_and_gradients", "transition_block.device",
}
VALUE = "recomputed from your own weights"

# variant id -> [(check that must fail, text its message must contain)]
EXPECT = {
    "Residual_relu_before_add": [("Residual.values_identity", "the ReLU runs before the addition")],
    "Residual_no_final_relu": [("Residual.values_identity", "missing the final ReLU")],
    "Residual_bn_after_add": [("Residual.values_projection", "the second BN runs after the addition")],
    "Residual_no_inner_relu": [("Residual.values_identity", "ReLU between the first BN and the second conv is missing")],
    "Residual_shortcut_no_stride": [("Residual.seed_downsample_shape", "the main path and the shortcut must have the same shape"),
                                    ("Residual.resnet18_table", "resnet_block2 failed")],
    "Residual_stride_on_conv2": [("Residual.values_projection", "the first 3x3 conv has stride (1, 1), the specification says 2")],
    "Residual_bns_in_python_list": [("Residual.values_identity", "registered submodules")],
    "Residual_no_padding": [("Residual.seed_same_shape", "expected shape (4, 3, 6, 6), got (4, 3, 2, 2)"),
                            ("Residual.shapes", "expected shape (2, 8, 4, 4), got (2, 8, 0, 0)")],
    "Residual_ignores_stride": [("Residual.seed_downsample_shape", "expected shape (4, 6, 3, 3), got (4, 6, 6, 6)"),
                                ("Residual.resnet18_table",
                                 "first difference is at resnet_block2: expected (1, 128, 28, 28), got (1, 128, 56, 56)")],
    "Residual_main_path_data": [("Residual.gradients", "no gradient reached the weight of the first 3x3 conv")],
    "DenseBlock_cat_output_first": [("DenseBlock.values", "the input comes first")],
    "DenseBlock_feeds_last_only": [("DenseBlock.values", "conv block 2 gets only the previous conv block's output")],
    "DenseBlock_wrong_out_channels": [("DenseBlock.seed_out_channels", "expected the int 23, got 20"),
                                      ("DenseBlock.out_channels", "expected the int 17, got 12"),
                                      ("DenseBlock.densenet_table", "its out_channels attribute says 128")],
    "DenseBlock_returns_last_output": [("DenseBlock.seed_shape", "expected shape (4, 23, 8, 8), got (4, 10, 8, 8)"),
                                       ("DenseBlock.densenet_table", "first difference is at DenseBlock_0")],
    "DenseBlock_conv_bn_relu": [("DenseBlock.values", "a batch norm runs after its convolution")],
    "DenseBlock_python_list": [("DenseBlock.values", "not a registered parameter of your block")],
    "DenseBlock_no_relu": [("DenseBlock.values", "the ReLU between each BN and its conv is missing")],
    "DenseBlock_detached_features": [("DenseBlock.gradients", "no gradient reached the weight of the conv of conv block 1")],
    "transition_maxpool": [("transition_block.values", "max pooling")],
    "transition_no_relu": [("transition_block.values", "the ReLU after the BN is missing")],
    "transition_pool_first": [("transition_block.values", "the pooling runs first")],
    "transition_conv3x3": [("transition_block.values", "your block ran convolutions with kernels 3x3")],
    "transition_halves_itself": [("transition_block.seed_shape", "expected shape (4, 10, 4, 4), got (4, 11, 4, 4)"),
                                 ("transition_block.shapes", "expected shape (2, 8, 2, 2), got (2, 4, 2, 2)")],
    "transition_bn_after_conv": [("transition_block.values", "the batch norm runs after the conv")],
    # modelled on public code (issue 9)
    "Residual_torchvision_basicblock": [("Residual.values_projection", "no BN on the shortcut"),
                                        ("Residual.use_1x1conv", "no BN on the shortcut")],
    "Residual_preactivation": [("Residual.values_identity", "pre-activation block")],
    "Residual_shape_chosen_projection": [("Residual.use_1x1conv", "use_1x1conv alone decides")],
    "Residual_bottleneck": [("Residual.values_identity", "bottleneck block")],
    "Residual_plain_attribute_stats": [("Residual.device", "register_buffer")],
    "Residual_leaky_relu": [("Residual.values_identity", "your block applies leaky_relu")],
    "Residual_one_bn_twice": [("Residual.values_identity", "one batch-norm layer runs twice")],
    "Residual_shortcut_3x3": [("Residual.values_projection", "shortcut's conv has the wrong kernel size")],
    "DenseBlock_densenet_bc_bottleneck": [("DenseBlock.values", "bottleneck layer")],
    "DenseBlock_cat_default_dim": [("DenseBlock.seed_shape", "concatenate on dim=1")],
    "DenseBlock_input_plus_last_only": [("DenseBlock.seed_shape", "with only the last conv block's output")],
    "transition_functional_maxpool": [("transition_block.values", "max pooling")],
    "transition_plain_attribute_stats": [("transition_block.device", "register_buffer")],
}
# Structure faults are judged by the structure and value checks; the gradients checks pass them silently.
GRADIENTS_SILENT = [("Residual_torchvision_basicblock", "Residual.gradients"),
                    ("Residual_preactivation", "Residual.gradients"), ("Residual_bottleneck", "Residual.gradients"),
                    ("Residual_relu_before_add", "Residual.gradients"),
                    ("DenseBlock_densenet_bc_bottleneck", "DenseBlock.gradients"),
                    ("DenseBlock_conv_bn_relu", "DenseBlock.gradients"),
                    ("transition_bn_after_conv", "transition_block.eval_and_gradients")]
VALUE_MISTAKES = {"Residual_relu_before_add", "Residual_no_final_relu", "Residual_bn_after_add", "Residual_no_inner_relu",
                  "Residual_stride_on_conv2", "DenseBlock_cat_output_first", "DenseBlock_no_relu",
                  "transition_no_relu", "transition_pool_first"}

CATALOGUE = {v.id: v for m in (variants_Residual, variants_DenseBlock, variants_transition_block) for v in m.WRONG}

# Blocks built on a BatchNorm whose moving statistics have shape (C,): right in training mode,
# broken in eval mode (the (C,) vector broadcasts against the width).
EVAL_BROKEN = Variant("eval_broken_blocks", "Residual", "blocks on a BatchNorm that fails in eval mode",
                      append="\n".join(v.append for v in (
                          *[v for v in variants_Residual.RIGHT if v.id == "Residual_sequential_own_bn"],
                          *[v for v in variants_DenseBlock.RIGHT if v.id == "DenseBlock_feature_list_own_bn"],
                          *[v for v in variants_transition_block.RIGHT if v.id == "transition_module_class"])) + '''
_RightBatchNorm = BatchNorm


class BatchNorm(_RightBatchNorm):
    def __init__(self, num_features, num_dims):
        super().__init__(num_features, num_dims)
        self.moving_mean = torch.zeros(num_features)
        self.moving_var = torch.ones(num_features)
''')

# A transition block whose output is cut off from autograd.
DETACHED_TRANSITION = Variant("detached_transition", "transition_block", "output detached", append='''
class Transition(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, out_channels, 1),
                                  nn.AvgPool2d(2, 2))

    def forward(self, X):
        return self.body(X).detach()


def transition_block(in_channels, out_channels):
    return Transition(in_channels, out_channels)
''')

STUBS = Variant("stubs", "Residual", "the three blocks untouched", append='''
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
        super().__init__()
        raise NotImplementedError


class DenseBlock(nn.Module):
    def __init__(self, num_convs, in_channels, out_channels):
        super().__init__()
        raise NotImplementedError


def transition_block(in_channels, out_channels):
    raise NotImplementedError
''')

# A DenseBlock that makes a tensor on the CPU inside forward(): right on the CPU, broken on any other device.
DENSE_CPU_TENSOR = Variant("dense_cpu_tensor", "DenseBlock", "a CPU tensor created in forward", append='''
class DenseBlock(nn.Module):
    def __init__(self, num_convs, in_channels, out_channels):
        super().__init__()
        self.net = nn.ModuleList([conv_block(in_channels + i * out_channels, out_channels) for i in range(num_convs)])
        self.out_channels = in_channels + num_convs * out_channels

    def forward(self, X):
        for blk in self.net:
            Y = blk(X) * torch.ones(1, 1, 1, 1)
            X = torch.cat((X, Y), dim=1)
        return X
''')

# A Residual whose output matches none of the known mistakes: the message says so and gives the formula.
UNKNOWN_MISTAKE = Variant("residual_unknown_mistake", "Residual", "half the shortcut",
                          replace=(("return F.relu(Y + X)", "return F.relu(Y + 0.5 * X)"),))

SYNTHETIC = [
    (DENSE_CPU_TENSOR, "DenseBlock.device", "register_buffer"),
    (UNKNOWN_MISTAKE, "Residual.values_identity", "matches none of the"),
    (UNKNOWN_MISTAKE, "Residual.values_identity", "The formula is conv3x3 → BN → ReLU"),
    (EVAL_BROKEN, "Residual.eval_mode", "in eval mode"),
    (EVAL_BROKEN, "DenseBlock.eval_mode", "in eval mode"),
    (EVAL_BROKEN, "transition_block.eval_and_gradients", "in eval mode"),
    (DETACHED_TRANSITION, "transition_block.eval_and_gradients", "not connected to the input by autograd"),
]


def load_reference():
    spec = importlib.util.spec_from_file_location("bnlab_reference_for_blocks", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_my_checks_are_registered():
    ids = {c.id for c in runner.selected_checks(True, ["Residual", "DenseBlock", "transition_block"])}
    assert MINE <= ids


def test_every_wrong_variant_has_a_pinned_reason():
    assert set(EXPECT) == set(CATALOGUE)


def test_every_check_is_shown_failing():
    shown = {check for pairs in EXPECT.values() for check, _ in pairs} | {check for _, check, _ in SYNTHETIC}
    assert MINE <= shown, MINE - shown


CASES = [(vid, check, text) for vid, pairs in EXPECT.items() for check, text in pairs]


@pytest.mark.parametrize("vid,check_id,text", CASES, ids=[f"{v}-{c}" for v, c, _ in CASES])
def test_wrong_variant_fails_its_check(vid, check_id, text, tmp_path):
    result = grade_path(CATALOGUE[vid].write(str(tmp_path)), only=[check_id])[check_id]
    assert not result.passed, f"{vid} passed {check_id}"
    assert text in result.message, result.message
    assert "grader could not finish" not in result.message
    if vid in VALUE_MISTAKES and check_id.endswith(("values_identity", "values_projection", ".values")):
        assert VALUE in result.message, result.message


@pytest.mark.parametrize("variant,check_id,text", SYNTHETIC, ids=[f"{v.id}-{c}" for v, c, _ in SYNTHETIC])
def test_synthetic_submission_fails_its_check(variant, check_id, text, tmp_path):
    result = grade_path(variant.write(str(tmp_path)), only=[check_id])[check_id]
    assert not result.passed and text in result.message, result.message


def test_eval_broken_blocks_still_pass_training_mode_values(tmp_path):
    """The eval checks catch what the training-mode value checks cannot see."""
    only = ["Residual.values_projection", "DenseBlock.values", "transition_block.values"]
    results = grade_path(EVAL_BROKEN.write(str(tmp_path)), only=only)
    assert all(r.passed for r in results.values()), {i: r.message for i, r in results.items()}


def test_stubs_say_not_implemented(tmp_path):
    results = grade_path(STUBS.write(str(tmp_path)), only=sorted(MINE))
    assert set(results) == MINE
    for r in results.values():
        assert not r.passed and "not implemented yet" in r.message, (r.id, r.message)


@pytest.mark.parametrize("args,in_shape", [((3, 3), (4, 3, 6, 6)), ((3, 6, True, 2), (4, 3, 7, 7)),
                                           ((4, 5, True, 3), (2, 4, 8, 5))])
def test_recompute_residual_equals_pytorch_modules(args, in_shape):
    ref = load_reference()
    torch.manual_seed(rc.SEED)
    block = ref.Residual(*args)
    x = torch.randn(*in_shape, generator=torch.Generator().manual_seed(5))
    trace = traced(block, x)
    layers = rc.residual_layers(trace, args, "test")
    assert torch.allclose(rc.residual(x, layers, rc.residual_args(args)[3]), block.double()(x.double()), atol=1e-10)


def test_recompute_dense_block_and_transition_equal_pytorch_modules():
    ref = load_reference()
    x = torch.randn(3, 3, 5, 7, generator=torch.Generator().manual_seed(6))
    block = ref.DenseBlock(3, 3, 4)
    layers = rc.dense_layers(traced(block, x), (3, 3, 4), "test")
    assert torch.allclose(rc.dense_block(x, layers), block.double()(x.double()), atol=1e-10)
    block = ref.transition_block(3, 2)
    layers = rc.transition_layers(traced(block, x), (3, 2), "test")
    assert torch.allclose(rc.transition(x, layers), block.double()(x.double()), atol=1e-10)


def traced(block, x):
    """The trace the `module` probe would send, read through the same wire."""
    from autograder.core.student import unwrap
    from autograder.student_side import probes, wire
    answer = wire.decode(wire.encode(probes.forward(block, {"op": "forward", "x": x, "trace": True}))[8:])
    return unwrap(answer)["trace"]


@pytest.mark.parametrize("arch,input_shape,table", [
    ("resnet18", shape_tables.RESNET18_INPUT, shape_tables.RESNET18_TABLE),
    ("densenet", shape_tables.DENSENET_INPUT, shape_tables.DENSENET_TABLE)])
def test_reference_reproduces_the_seed_tables(arch, input_shape, table):
    student = InProcessStudent(REFERENCE)
    answer = student.probe("architecture", arch=arch, input_shape=list(input_shape), seed=rc.SEED)
    assert answer["failed"] is None
    assert [(name, tuple(shape)) for name, shape in answer["rows"]] == list(table)


def test_right_variants_pass_every_block_check(tmp_path):
    rights = variants_Residual.RIGHT + variants_DenseBlock.RIGHT + variants_transition_block.RIGHT
    assert len(rights) >= 7
    for v in rights:
        results = grade_path(v.write(str(tmp_path)), only=sorted(MINE))
        assert all(r.passed for r in results.values()), (v.id, {i: r.message for i, r in results.items() if not r.passed})


@pytest.mark.parametrize("vid,check_id", GRADIENTS_SILENT, ids=[f"{v}-{c}" for v, c in GRADIENTS_SILENT])
def test_gradients_checks_pass_structure_faults_silently(vid, check_id, tmp_path):
    """A check named "gradients" fails only for gradient reasons (issue 9, item 6)."""
    result = grade_path(CATALOGUE[vid].write(str(tmp_path)), only=[check_id])[check_id]
    assert result.passed, result.message


FUNCTIONAL = [v for v in variants_Residual.RIGHT if v.id == "Residual_functional_parameterlist"][0]


def load_variant(variant, tmp_path):
    spec = importlib.util.spec_from_file_location(variant.id, variant.write(str(tmp_path)))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args", [(3, 3), (3, 6, True, 2), (4, 4, True)])
def test_recompute_functional_residual_equals_its_own_forward(args, tmp_path):
    """F.conv2d / F.batch_norm on nn.ParameterList weights are read off the operation trace like modules."""
    block = load_variant(FUNCTIONAL, tmp_path).Residual(*args)
    x = torch.randn(3, args[0], 5, 7, generator=torch.Generator().manual_seed(5))
    layers = rc.residual_layers(traced(block, x), args, "test")
    assert layers["conv1"].raw["weight"]["name"] == "w.0" and layers["bn2"].raw["weight"]["name"] == "g.1"
    assert (layers["shortcut"] is not None) == (len(args) > 2)
    assert torch.allclose(rc.residual(x, layers, rc.residual_args(args)[3]), block.double()(x.double()), atol=1e-10)


def test_op_trace_record_format():
    """Ids: one layer used twice has one weight id; tensors flow from op to op; a from-scratch BN module is one
    record; lazy layers get their registered names; nothing stays hooked after the pass."""
    from torch import nn
    from torch.nn import functional as F
    ref = load_reference()

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
            self.own = ref.BatchNorm(3, 4)
            self.lazy = nn.LazyConv2d(2, 1)

        def forward(self, x):
            y = F.relu(self.own(self.conv(self.conv(x))))
            return F.avg_pool2d(torch.cat((y, self.lazy(y + x)), dim=1), 2)

    trace = traced(Probe(), torch.randn(2, 3, 5, 5))
    kinds = [(r["kind"], r["fn"]) for r in trace]
    assert kinds == [("conv", "conv2d"), ("conv", "conv2d"), ("norm", "BatchNorm"), ("act", "relu"), ("add", "add"),
                     ("conv", "conv2d"), ("cat", "cat"), ("pool", "avg_pool2d")]
    first, second, norm, relu, add, lazy, cat, pool = trace
    assert first["params"]["weight"]["id"] == second["params"]["weight"]["id"] and "bias" not in first["params"]
    assert first["in"] == [0] and second["in"] == [first["out"]] and norm["in"] == [second["out"]]
    assert norm["source"] == "module" and norm["params"]["weight"]["name"] == "own.gamma"
    assert set(add["in"]) == {relu["out"], 0} and lazy["params"]["weight"]["name"] == "lazy.weight"
    assert first["config"] == {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}
    assert cat["config"] == {"dim": 1} and pool["config"]["kernel_size"] == 2 and pool["out_shape"] == [2, 5, 2, 2]
    assert not torch.nn.modules.module._global_forward_hooks
    assert not torch.nn.modules.module._global_forward_pre_hooks


def test_meta_forward_returns_shapes_and_devices():
    from autograder.student_side import probes
    block = load_reference().Residual(3, 6, True, 2).to("meta")
    answer = probes.forward(block, {"x": torch.randn(2, 3, 7, 7), "device": "meta", "trace": True,
                                    "trace_values": False})
    assert answer["y"] == {"shape": [2, 6, 4, 4], "device": "meta"}
    assert all(w["device"] == "meta" and "value" not in w for r in answer["trace"] for w in r["params"].values())


class FakeGPUStudent:
    """Answers the device check's `module` probes as a machine with a GPU would; records the devices asked for."""

    def __init__(self, cuda_output_device):
        self.asked, self.cuda_output_device = [], cuda_output_device

    def probe(self, probe_name, /, **kwargs):
        from autograder.core.student import Returned
        device = kwargs["ops"][2]["device"]
        assert probe_name == "module" and kwargs["ops"][4]["device"] == device
        self.asked.append(device)
        shape = [2, 6, 4, 4]
        if device == "meta":
            y = {"shape": shape, "device": "meta"}
        else:
            y = Returned(torch.zeros(shape), False, False, self.cuda_output_device)
        forward = {"y": y, "trace": [], "norm_ops": []}
        return [["cpu", "meta", "cuda"], None, None, None, forward, None, forward]


def test_device_check_also_runs_on_cuda_where_there_is_a_gpu():
    from autograder.core.check import Fail
    from autograder.hidden import residual
    student = FakeGPUStudent("cuda:0")
    residual.devices(student, "Residual", (3, 6, True, 2), (2, 3, 7, 7), (2, 6, 4, 4))
    assert student.asked == ["meta", "cuda"]
    with pytest.raises(Fail, match="output is on cpu, expected cuda"):
        residual.devices(FakeGPUStudent("cpu"), "Residual", (3, 6, True, 2), (2, 3, 7, 7), (2, 6, 4, 4))


def test_own_bn_with_frozen_parameter_statistics_is_one_norm():
    """Moving statistics kept as nn.Parameter(requires_grad=False) (issue 9, item 5) do not hide the BN."""
    from torch import nn

    class FrozenStatsBN(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.weight, self.shift = nn.Parameter(torch.rand(c) + 0.5), nn.Parameter(torch.rand(c))
            self.mean = nn.Parameter(torch.zeros(c), requires_grad=False)
            self.var = nn.Parameter(torch.ones(c), requires_grad=False)

        def forward(self, x):
            m, v = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
            return self.weight.view(1, -1, 1, 1) * (x - m) / torch.sqrt(v + 1e-5) + self.shift.view(1, -1, 1, 1)

    block = nn.Sequential(FrozenStatsBN(3), nn.ReLU(), nn.Conv2d(3, 2, 1), nn.AvgPool2d(2))
    x = torch.randn(3, 3, 6, 5, generator=torch.Generator().manual_seed(7))
    layers = rc.transition_layers(traced(block, x), (3, 2), "test")
    assert layers[0].own and layers[0].raw["weight"]["name"] == "0.weight"
    assert torch.allclose(rc.transition(x, layers), block.double()(x.double()), atol=1e-10)

"""Hidden checks: seed 002's layer-by-layer shape tables for ResNet-18 and DenseNet, built from the student's blocks.

The expected tables are copied from the seed's printout (they are the
specification, not computed here). The ``architecture`` probe assembles each
network with the student's ``Residual`` / ``DenseBlock`` / ``transition_block``
(and PyTorch's layers for the stem and the head), runs it in eval mode without
gradients, and returns each named child's output shape; the first layer whose
shape differs, or that fails, is reported.
"""
from ..core.check import Fail, check
from ..reference.blocks import SEED

RESNET18_INPUT = (1, 1, 224, 224)
RESNET18_TABLE = (
    ("0", (1, 64, 112, 112)), ("1", (1, 64, 112, 112)), ("2", (1, 64, 112, 112)), ("3", (1, 64, 56, 56)),
    ("resnet_block1", (1, 64, 56, 56)), ("resnet_block2", (1, 128, 28, 28)),
    ("resnet_block3", (1, 256, 14, 14)), ("resnet_block4", (1, 512, 7, 7)),
    ("global_avg_pool", (1, 512, 1, 1)), ("fc", (1, 10)),
)

DENSENET_INPUT = (1, 1, 96, 96)
DENSENET_TABLE = (
    ("0", (1, 64, 48, 48)), ("1", (1, 64, 48, 48)), ("2", (1, 64, 48, 48)), ("3", (1, 64, 24, 24)),
    ("DenseBlock_0", (1, 192, 24, 24)), ("transition_block_0", (1, 96, 12, 12)),
    ("DenseBlock_1", (1, 224, 12, 12)), ("transition_block_1", (1, 112, 6, 6)),
    ("DenseBlock_2", (1, 240, 6, 6)), ("transition_block_2", (1, 120, 3, 3)),
    ("DenseBlock_3", (1, 248, 3, 3)), ("BN", (1, 248, 3, 3)), ("relu", (1, 248, 3, 3)),
    ("global_avg_pool", (1, 248, 1, 1)), ("fc", (1, 10)),
)

RESNET_HINTS = {
    "resnet_block1": "resnet_block1 is Residual(64, 64) twice: no 1x1 conv, stride 1, so the shape is unchanged.",
    "later": "each later stage starts with Residual(c, 2c, True, 2): its 1x1 shortcut doubles the channels to match, "
             "and stride 2 on the first 3x3 conv and on the 1x1 conv halves height and width; then Residual(2c, 2c).",
}
DENSE_HINTS = {
    "DenseBlock": "DenseBlock(4, c, 32) adds 4·32 = 128 channels (out_channels = c + num_convs·growth) and keeps "
                  "height and width (3x3 convs with padding 1).",
    "transition_block": "transition_block(c, c // 2) gets half the channels from its argument (1x1 conv) and halves "
                        "height and width (AvgPool2d(2, stride 2)).",
}


def judge_table(student, arch, title, input_shape, table, hint_for):
    answer = student.probe("architecture", arch=arch, input_shape=list(input_shape), seed=SEED)
    rows, failed = answer["rows"], answer["failed"]
    where = f"{title} on a {input_shape} input, layer by layer against the lesson's table"
    for (name, want), (got_name, got) in zip(table, rows):
        if got_name != name or tuple(got) != want:
            raise Fail(f"{where}: the first difference is at {name}: expected {want}, got {tuple(got)}. "
                       f"Hint: {hint_for(name)}")
    for name, got in rows:
        claimed = answer.get("out_channels", {}).get(name)
        if claimed is not None and claimed != got[1]:
            raise Fail(f"{where}: {name} outputs {got[1]} channels but its out_channels attribute says {claimed}; "
                       f"the network sizes the next layer from out_channels. Hint: out_channels = in_channels + "
                       f"num_convs·growth.")
    if failed:
        raise Fail(f"{where}: {failed['layer']} failed ({failed['message']}); the layers before it match. "
                   f"Hint: {hint_for(failed['layer'])}")
    if len(rows) != len(table):
        raise Fail(f"{where}: expected {len(table)} layers, the network ran {len(rows)}.")


@check("Residual.resnet18_table", "Residual", 2, "ResNet-18 from your Residual: seed 002's shape table (224x224)",
       hidden=True)
def resnet18_table(student):
    judge_table(student, "resnet18", "ResNet-18 built from your Residual", RESNET18_INPUT, RESNET18_TABLE,
                lambda name: RESNET_HINTS.get(name, RESNET_HINTS["later"]))


@check("DenseBlock.densenet_table", "DenseBlock", 2,
       "DenseNet from your DenseBlock and transition_block: seed 002's shape table (96x96)", hidden=True)
def densenet_table(student):
    judge_table(student, "densenet", "DenseNet built from your DenseBlock and transition_block", DENSENET_INPUT,
                DENSENET_TABLE, lambda name: DENSE_HINTS.get(name.rsplit("_", 1)[0], DENSE_HINTS["DenseBlock"]))

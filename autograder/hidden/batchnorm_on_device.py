"""Hidden check of ``BatchNorm``'s device handling, on PyTorch's meta device (no GPU needed).

``module.to(device)`` moves parameters and registered buffers, not plain tensor
attributes: moving statistics kept as plain attributes must be moved to X's
device in forward (d2l's way) or registered as buffers, or the first forward on
a GPU raises "Expected all tensors to be on the same device". The meta device
(shapes, no data) behaves like a GPU for this, on every machine.
"""
from ..core.check import Fail, check, expect
from ..checks.batchnorm_module import CASES, build
from .batchnorm_module import INPUTS, layout_of

DEVICE_HINT = ("Hint: model.to(device) and .cuda() move parameters and registered buffers, not plain tensor "
               "attributes: register the moving statistics with self.register_buffer(...), or move them to X.device "
               "in forward, as d2l does (if self.moving_mean.device != X.device: ...). On a GPU this is the error "
               "'Expected all tensors to be on the same device'.")


def judge_placement(layout, X, when, result):
    """One forward on the meta device: Fail if it raised about devices, or if gamma, beta or the
    moving statistics are not on meta afterwards; a note if it raised for another reason."""
    what = f"{layout.what}.to('meta'), {when} on a meta input of shape {tuple(X.shape)}"
    where = result["placement"]
    left = [f"{n} (on {where.get(n, 'no longer a tensor')})" for n in (layout.gamma, layout.beta, layout.mean, layout.var)
            if where.get(n) != "meta"]
    error = result["error"]
    if left or (error and "device" in error.lower()):
        raise Fail(f"{what}: {'raised ' + error if error else 'ran'}"
                   f"{'; not on the input device afterwards: ' + ', '.join(left) if left else ''}. {DEVICE_HINT}")
    if error:
        return (f"{when} on the meta device raised {error.split(':')[0]} (not about devices; meta tensors "
                f"hold no values), but your tensors moved with the module")
    expect(result["y_device"] == "meta" and result["y_shape"] == list(X.shape),
           f"{what}: the output is {'on ' + str(result['y_device']) if result['y_device'] else 'not a tensor'}"
           f"{' with shape ' + str(tuple(result['y_shape'])) if result['y_shape'] else ''}; expected a meta tensor of "
           f"shape {tuple(X.shape)}. Hint: create no new tensors on a fixed device in forward; use X.device.")
    return ""


@check("BatchNorm.follows_device", "BatchNorm", 1,
       "after .to(device), forward runs on that device, moving statistics included (no GPU needed)", hidden=True)
def follows_device(student):
    """Guards the classic device bug: module.to(device) moves parameters and registered buffers,
    not plain tensor attributes, so moving statistics kept as plain attributes must be moved to
    X's device in forward (d2l's way) or registered as buffers; otherwise the first forward on a
    GPU raises. Checked on every machine with PyTorch's meta device (shapes, no data), which
    behaves like a GPU here: BatchNorm(3, 2) and BatchNorm(3, 4) after .to('meta') must run a
    training-mode and then an eval-mode forward on a meta input, and a fresh one an eval-mode
    forward straight away (statistics moved only in the training branch fail that), give a
    meta output of X's shape and
    hold gamma, beta and the moving statistics on meta afterwards. An error that is not about
    devices (e.g. .item(), which meta tensors cannot do) is not counted when the tensors moved."""
    notes = []
    for num_features, num_dims in CASES:
        X = INPUTS[num_dims][0]
        layout = layout_of(student, num_features, num_dims)
        to_meta, on_meta = {"op": "to", "device": "meta"}, {"op": "forward_on", "x": X, "device": "meta"}
        trained = build(student, num_features, num_dims, [to_meta, on_meta, {"op": "eval"}, on_meta])
        # eval() straight after .to(): as when a trained model is loaded and evaluated
        fresh = build(student, num_features, num_dims, [to_meta, {"op": "eval"}, on_meta])
        for when, result in (("a training-mode forward", trained[1]), ("then an eval-mode forward", trained[3]),
                             ("an eval-mode forward straight away (no training forward first)", fresh[2])):
            notes.append(judge_placement(layout, X, when, result))
    return "; ".join(sorted({n for n in notes if n}))

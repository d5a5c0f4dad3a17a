#!/usr/bin/python3
"""Torchvision architectures as ONNX files for the zoo corpus test (npm run test:zoo).

    /usr/bin/python3 test/zoo/zoo.py OUTDIR NAME [NAME ...]

Producers: Debian bookworm's python3-torch 1.13, python3-torchvision 0.14, python3-onnx 1.12.
For each NAME it writes into OUTDIR/NAME/:
  model.onnx      torch.onnx.export(opset_version=13), the exporter's defaults otherwise
                  (eval mode: Conv+BatchNorm folded where it can, identical initializers deduplicated)
  input.bin       the input, float32 little-endian, seeded
  output.bin      PyTorch's output for it, float32
  meta.json       shapes, and the independent count of balanceable units (below)
Weights are torchvision's own random initialisation under torch.manual_seed(0); BatchNorm
statistics and affine parameters are moved away from identity (seeded), so folded BatchNorms
change the weights and unfolded ones are real affine maps.

The count is computed from the PyTorch module (torch.fx), not from the ONNX file: each Conv/Linear
is a group of units (its output channels). Values are followed forward in the fx graph; a group is
balanceable when every value it reaches is consumed only by operations that pass a positive
per-channel scale (BatchNorm, ReLU/LeakyReLU/PReLU, pooling, flatten/view/transpose/chunk of the
channel shuffle, cat, dropout, identity, nearest/bilinear interpolation, multiplication by a
Python number) and ends at the data input of another Conv/Linear. Reaching the model's output, a
non-homogeneous activation (Sigmoid, Hardswish, Hardsigmoid, SiLU, ReLU6/Hardtanh, GELU), a product
of two computed tensors (squeeze-excite gating) or any other operation makes it unbalanceable. A
residual add ties the groups on its two sides (union-find); a tied set is balanceable only when all
of its groups are and none of them is tied to a value that carries no scale (the model's input, or
the output of an operation above that stops the scale, such as Hardswish).
"""
import json
import operator
import os
import sys
import warnings

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.models as tvm
import torchvision.models.segmentation as tvs
import torchvision.models.video as tvv
from torchvision.models import shufflenetv2

warnings.filterwarnings("ignore")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

MODELS = {
    "resnet18": (lambda: tvm.resnet18(), (1, 3, 224, 224)),
    "resnet50": (lambda: tvm.resnet50(), (1, 3, 224, 224)),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(), (1, 3, 224, 224)),
    "mobilenet_v3_small": (lambda: tvm.mobilenet_v3_small(), (1, 3, 224, 224)),
    "squeezenet1_1": (lambda: tvm.squeezenet1_1(), (1, 3, 224, 224)),
    "densenet121": (lambda: tvm.densenet121(), (1, 3, 224, 224)),
    "shufflenet_v2_x1_0": (lambda: tvm.shufflenet_v2_x1_0(), (1, 3, 224, 224)),
    "regnet_y_400mf": (lambda: tvm.regnet_y_400mf(), (1, 3, 224, 224)),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(), (1, 3, 224, 224)),
    "googlenet": (lambda: tvm.googlenet(aux_logits=False, init_weights=True), (1, 3, 224, 224)),
    "mnasnet0_5": (lambda: tvm.mnasnet0_5(), (1, 3, 224, 224)),
    "lraspp_mobilenet_v3_large": (lambda: tvs.lraspp_mobilenet_v3_large(weights_backbone=None), (1, 3, 224, 224)),
    "fcn_resnet50": (lambda: tvs.fcn_resnet50(weights_backbone=None, aux_loss=False), (1, 3, 224, 224)),
    "r3d_18": (lambda: tvv.r3d_18(), (1, 3, 8, 112, 112)),
    "vgg11_bn": (lambda: tvm.vgg11_bn(), (1, 3, 224, 224)),
}

BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
PASS_MODULES = BN + (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout3d,
                     nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
                     nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d, nn.Flatten)
PASS_FUNCTIONS = {torch.flatten, F.relu, torch.relu, F.adaptive_avg_pool2d, F.max_pool2d, F.avg_pool2d, torch.cat,
                  torch.transpose, torch.chunk, operator.getitem, F.dropout, shufflenetv2.channel_shuffle,
                  torchvision.ops.stochastic_depth}  # the identity in eval mode
PASS_METHODS = {"flatten", "view", "reshape", "transpose", "contiguous", "chunk", "relu", "relu_", "mean"}
ADD = {operator.add, operator.iadd, torch.add}
MUL = {operator.mul, operator.imul, torch.mul}


class Wrap(nn.Module):
    """The model with one tensor output (segmentation models return a dict)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        y = self.m(x)
        if isinstance(y, dict):
            return y["out"]
        if isinstance(y, tuple):
            return y[0]
        return y


def build(name):
    torch.manual_seed(0)
    make, shape = MODELS[name]
    m = make()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, BN):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                if mod.affine:
                    mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    mod.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return m.eval(), shape


class ZooTracer(torch.fx.Tracer):
    """fx's Tracer, unpacking `x.chunk(n)` into n parts (torch 1.13 cannot read Python 3.11's bytecode for it)."""

    def is_leaf_module(self, m, qualname):
        # torchvision's own subclasses (Conv3DSimple) are layers too.
        return isinstance(m, LAYERS) or super().is_leaf_module(m, qualname)

    def iter(self, obj):
        node = obj.node
        if node.op == "call_method" and node.target == "chunk":
            return iter([obj[i] for i in range(node.args[1])])
        return super().iter(obj)


def count(m):
    """(units, balanceable units, per-layer list) from the fx graph, as described above."""
    # ShuffleNet's channel_shuffle unpacks x.size(): kept whole (a permutation of the channels).
    # (torch.fx.wrap's own registry, as `torch.fx.wrap("channel_shuffle")` in that module would do.)
    entry = (shufflenetv2.__dict__, "channel_shuffle")
    if entry not in torch.fx._symbolic_trace._wrapped_fns_to_patch:
        torch.fx._symbolic_trace._wrapped_fns_to_patch.append(entry)
    graph = ZooTracer().trace(m)
    mods = dict(m.named_modules())
    gm = torch.fx.GraphModule(m, graph)
    groups = {}  # fx node name -> units
    carriers = {}  # fx node -> set of group names whose scale it carries
    bad = {}
    parent = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    def tie(a, b):
        parent[find(a)] = find(b)

    def spoil(cs, why):
        for c in cs:
            bad.setdefault(c, why)

    # Values that carry no scale (the input, or what a non-homogeneous operation made): adding one
    # to a group's values makes that group unbalanceable, as a residual tie to them would.
    FIXED = "<fixed>"
    bad["<input>"] = "is the model's input"
    bad[FIXED] = "does not scale"

    def tensors_of(args):
        out = set()
        for a in args:
            if isinstance(a, torch.fx.Node):
                out |= carriers.get(a, set())
            elif isinstance(a, (list, tuple)):
                out |= tensors_of(a)
            elif isinstance(a, dict):
                out |= tensors_of(list(a.values()))
        return out

    def is_tensor_arg(a):
        return isinstance(a, torch.fx.Node) and a in carriers

    for node in gm.graph.nodes:
        ins = tensors_of(list(node.args) + list(node.kwargs.values()))
        if node.op == "placeholder":
            carriers[node] = {"<input>"}
            continue
        if node.op == "output":
            spoil(ins, "reaches the output")
            continue
        if node.op == "get_attr":
            carriers[node] = set()
            continue
        if node.op == "call_module":
            mod = mods[node.target]
            if isinstance(mod, LAYERS):
                units = mod.out_features if isinstance(mod, nn.Linear) else mod.out_channels
                groups[node.name] = (node.target, units)
                carriers[node] = {node.name}
            elif isinstance(mod, PASS_MODULES):
                carriers[node] = ins
            else:
                spoil(ins, "feeds %s" % type(mod).__name__)
                carriers[node] = {FIXED}
            continue
        # call_function / call_method
        t = node.target
        if node.op == "call_method" and t in ("size", "dim"):
            continue
        if node.op == "call_function" and t is getattr:
            continue
        if t is operator.getitem and not is_tensor_arg(node.args[0]):
            continue
        if node.op == "call_function" and t is F.interpolate:
            mode = node.kwargs.get("mode", node.args[3] if len(node.args) > 3 else "nearest")
            if mode in ("nearest", "linear", "bilinear", "trilinear"):
                carriers[node] = ins
            else:
                spoil(ins, "interpolate %s" % mode)
                carriers[node] = {FIXED}
            continue
        if (node.op == "call_function" and t in PASS_FUNCTIONS) or (node.op == "call_method" and t in PASS_METHODS):
            carriers[node] = ins
            continue
        if (node.op == "call_function" and t in ADD) or (node.op == "call_method" and t in ("add", "add_")):
            sides = [carriers.get(a, set()) for a in node.args[:2] if isinstance(a, torch.fx.Node)]
            if len(sides) == 2:
                for a in sides[0]:
                    for b in sides[1]:
                        tie(a, b)
            else:
                spoil(ins, "adds a constant")
            carriers[node] = ins
            continue
        if (node.op == "call_function" and t in MUL) or (node.op == "call_method" and t in ("mul", "mul_")):
            tensor_args = [a for a in node.args[:2] if is_tensor_arg(a)]
            if len(tensor_args) == 1:
                carriers[node] = ins
            else:
                spoil(ins, "is multiplied by a computed value (gating)")
                carriers[node] = {FIXED}
            continue
        spoil(ins, "feeds %s" % (t if isinstance(t, str) else getattr(t, "__name__", str(t))))
        carriers[node] = {FIXED}

    members = {}
    for name in list(groups) + ["<input>", FIXED]:
        members.setdefault(find(name), []).append(name)
    layers = []
    total = 0
    balanceable = 0
    for name, (target, units) in groups.items():
        mates = members[find(name)]
        why = bad.get(name)
        if why is None:
            for other in mates:
                if other in bad and other != name:
                    why = "tied by a residual add to %s, which %s" % (other, bad[other])
                    break
        total += units
        if why is None:
            balanceable += units
        layers.append({"module": target, "units": units, "balanceable": why is None, **({"reason": why} if why else {})})
    return total, balanceable, layers


def main():
    out_dir = sys.argv[1]
    for name in sys.argv[2:]:
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        m, shape = build(name)
        total, balanceable, layers = count(m)
        w = Wrap(m).eval()
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            y = w(x)
        tmp = os.path.join(d, "model.onnx.tmp")
        torch.onnx.export(w, x, tmp, opset_version=13, input_names=["input"], output_names=["output"])
        os.replace(tmp, os.path.join(d, "model.onnx"))
        x.numpy().astype("<f4").tofile(os.path.join(d, "input.bin"))
        y.numpy().astype("<f4").tofile(os.path.join(d, "output.bin"))
        meta = {
            "name": name,
            "producer": "torch %s, torchvision %s, torch.onnx.export opset 13" % (torch.__version__, torchvision.__version__),
            "input": list(shape),
            "output": list(y.shape),
            "units": total,
            "balanceable": balanceable,
            "layers": layers,
        }
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(name, total, balanceable, flush=True)


if __name__ == "__main__":
    main()

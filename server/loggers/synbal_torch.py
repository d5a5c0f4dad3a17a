"""synbal_torch: synaptic balance for PyTorch training runs: watch it, and act on it.

Single file, needs only torch (>= 1.13). Three tools:

* BalanceLogger(model, path, every=50): every `every` steps, on the model's own device and under
  torch.no_grad(), each hidden unit's costs

      IN  = sum |w|^p over the unit's incoming weights, bias included
      OUT = sum |w|^p over its outgoing weights

  appended as one JSON line (format: server/schemas/balance-log.schema.json, described in
  server/loggers/README.md) that the VS Code monitor tails live. Only rank 0 writes.
* balance_(model, optimizer=None, p=2): rescales every balanceable hidden unit in place (incoming
  weights and bias by lambda > 0, outgoing weights by 1/lambda: the function is unchanged) to the
  unique minimum of sum |w|^p over those scalings, and rescales the optimizer's state with the
  weights.
* BalanceSchedule(model, optimizer, every=k, at_start=True, log=logger): balance_ before training
  and/or every k steps, each event written to the balance log with its Delta R.

    from synbal_torch import BalanceLogger, BalanceSchedule
    logger = BalanceLogger(model, "runs/balance.jsonl", every=50, run="balanced")
    schedule = BalanceSchedule(model, optimizer, every=500, log=logger)   # balances now (step 0)
    for step, (x, y) in enumerate(loader, 1):
        ...; loss.backward(); optimizer.step()
        schedule.step(step)                 # balances (and logs) when step % 500 == 0
        logger.step(step, loss=loss)        # logs when step % 50 == 0
    logger.close()

Which units (find_units): from the real data flow, traced with torch.fx, by the rules of the
engine's ONNX builder. The output channels of a Linear or Conv1d/2d/3d (grouped and depthwise
included) are hidden units when every path from them to the next layers passes a positive
per-channel scale through: ReLU, LeakyReLU, PReLU, Identity (modules, F.relu / torch.relu /
.relu(), F.leaky_relu, F.prelu), dropout, max/avg/adaptive pooling, flatten / view(n, -1) /
reshape(n, -1) (channel-major), multiplication or division by a constant, torch.cat along the
channel axis (each part keeps its own units), BatchNorm (see below), and reads of .shape /
.size(). A residual `a + b` of two unit-carrying values ties the groups on both sides (one scale
per channel index, shared); added to anything else (an input, a constant) they stay visible.
Anything else (sigmoid, tanh, GELU, ReLU6, LayerNorm, softmax, gating products, ...) keeps the
units visible, with the reason; so does reaching the model's output (an output layer), a layer
called more than once (shared weights), or a tie with a non-balanceable member. When tracing
fails (data-dependent control flow, ...) the registration-order chain of earlier versions is the
fallback (find_pairs: a Linear/Conv followed through activations, dropout, pooling and flatten
by the next Linear/Conv; no ties, no BatchNorm), and the reason is logged once (logging, and
`Units.fallback`).

BatchNorm after a unit, `batchnorm=` of find_units / balance_ / BalanceSchedule / BalanceLogger:
* "scale" (the engine's rule for BatchNorm after a conv, on its inference form
  y = gamma (x - mu) / sigma + beta): scaling the channel by lambda scales the running mean mu
  and beta by lambda too (gamma and the running variance do not change); beta counts in the
  unit's IN cost, the running mean is scaled but not regularized. Exact for the model in eval()
  mode. In train() mode BN divides by the batch statistics instead, which removes the input's
  scale, so there the rescaled beta would change the function.
* "affine": a BatchNorm normalizes its input's scale away, so the units before it stay as they
  are (visible: "normalized by BatchNorm"), and the BN's own channels are the units, with gamma
  and beta as incoming weights (the engine's rule for an affine map after something that cannot
  scale): y = gamma * xhat + beta becomes lambda * y. Exact in train() and eval() mode alike.
* "auto" (default): "affine" for a BatchNorm in training mode, "scale" in eval mode. So
  balancing during training never changes what the next forward pass computes, and a model in
  eval() mode is balanced as the engine balances its ONNX export.
A BatchNorm without running statistics always counts as in training mode; one without affine
parameters has no units of its own in "affine" mode.
"""

import base64
import json
import logging
import math
import operator
import struct
import time

import torch
from torch import nn

LOG_VERSION = 1
_log = logging.getLogger("synbal_torch")

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Identity)
_PASS_NAMES = (
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Flatten",
)
_PASS = tuple(getattr(nn, n) for n in _PASS_NAMES if hasattr(nn, n)) + _ACTIVATIONS


def _is_weighted(m):
    return isinstance(m, _WEIGHTED) and getattr(m, "groups", 1) == 1


def _units(m):
    return m.out_features if isinstance(m, nn.Linear) else m.out_channels


def _inputs(m):
    return m.in_features if isinstance(m, nn.Linear) else m.in_channels


def find_pairs(model):
    """(name, layer, next_layer) for every hidden layer found from the module structure."""
    leaves = [(n, m) for n, m in model.named_modules() if len(list(m.children())) == 0]
    pairs = []
    for i, (name, m) in enumerate(leaves):
        if not _is_weighted(m):
            continue
        j = i + 1
        while j < len(leaves) and isinstance(leaves[j][1], _PASS):
            j += 1
        if j < len(leaves) and _is_weighted(leaves[j][1]) and _inputs(leaves[j][1]) % _units(m) == 0:
            pairs.append((name, m, leaves[j][1]))
    return pairs



# ---------------------------------------------------------------------------------------------
# Units from the data flow (torch.fx)
# ---------------------------------------------------------------------------------------------

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_POOL_NAMES = (
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
)
_PASS_MODULES = tuple(getattr(nn, n) for n in _POOL_NAMES if hasattr(nn, n)) + (nn.Identity,)
_ACT_MODULES = (nn.ReLU, nn.LeakyReLU, nn.PReLU)
_F = torch.nn.functional
_PASS_FUNCTIONS = {
    _F.relu, torch.relu, _F.leaky_relu, _F.prelu, _F.dropout, _F.dropout2d, _F.dropout3d,
    _F.max_pool1d, _F.max_pool2d, _F.max_pool3d, _F.avg_pool1d, _F.avg_pool2d, _F.avg_pool3d,
    _F.adaptive_avg_pool1d, _F.adaptive_avg_pool2d, _F.adaptive_avg_pool3d,
    _F.adaptive_max_pool1d, _F.adaptive_max_pool2d, _F.adaptive_max_pool3d,
    torch.nn.functional.relu_, torch.relu_,
}
for _name in ("dropout1d", "alpha_dropout", "feature_alpha_dropout"):
    if hasattr(_F, _name):
        _PASS_FUNCTIONS.add(getattr(_F, _name))
_PASS_METHODS = {"relu", "relu_", "contiguous", "clone", "detach", "float", "double", "to"}
_ADD = {operator.add, operator.iadd, torch.add}
_MUL = {operator.mul, operator.imul, torch.mul, operator.truediv, operator.itruediv, torch.div}
_CAT = {torch.cat}
if hasattr(torch, "concat"):
    _CAT.add(torch.concat)
_FLATTEN = {torch.flatten}
_SHAPE_METHODS = {"size", "dim"}


class Group:
    """A group of hidden units: a layer's output channels, or a BatchNorm's channels ("affine")."""

    def __init__(self, name, module, size, kind="layer"):
        self.name = name
        self.module = module
        self.size = size
        self.kind = kind
        # Scaled by lambda along dim 0, from `start` (a channel slice): (tensor, kind, start); kind
        # "w": a layer's weight (its cost is counted by input, through the consumers), "b": a cost
        # of its own (bias, BN beta/gamma), "u": scaled but not regularized (BN running mean).
        self.ins = []
        self.reasons = []
        self.reaches_layer = False
        self.reaches_output = False
        self.joined = False
        self.role = "hidden"

    def stop(self, reason):
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def balanceable(self):
        return self.role == "hidden" and not self.reasons

    def __repr__(self):
        return "Group(%s, %d, %s)" % (self.name, self.size, "balanceable" if self.balanceable else (self.role if self.role != "hidden" else "; ".join(self.reasons)))


class Units:
    """What find_units found: groups (in order made), ties (lists of group names), the layers that
    read each group (consumers), and `fallback`: why registration order was used, or None."""

    def __init__(self, groups, ties, consumers, regularized, fallback=None):
        self.groups = groups
        self.ties = ties
        # [(layer module, [(group, start element, inner elements)])]: the layers' data inputs.
        self.consumers = consumers
        # Every tensor Sigma |w|^p counts (R): the layers' weights and biases, BN beta ("scale"), gamma and beta ("affine").
        self.regularized = regularized
        self.fallback = fallback

    def by_name(self, name):
        return next(g for g in self.groups if g.name == name)

    def as_dict(self):
        return {
            "method": "registration order" if self.fallback else "torch.fx",
            "fallback": self.fallback,
            "groups": [{"name": g.name, "size": g.size, "kind": g.kind, "role": g.role, "balanceable": g.balanceable, "reasons": list(g.reasons)} for g in self.groups],
            "ties": [list(t) for t in self.ties],
        }


class _V:
    """A traced value that carries units: parts (group, start, inner) along its unit axis, in
    channels (`flat`: after a channel-major flatten, each channel spans a multiple of that, known
    at the Linear that reads it); pos "C" (axis 1 of N, C, ...) or "L" (the last axis)."""

    __slots__ = ("parts", "pos", "width", "flat")

    def __init__(self, parts, pos, width, flat=False):
        self.parts = parts
        self.pos = pos
        self.width = width
        self.flat = flat


class _Tracer:
    def __init__(self, model, batchnorm):
        self.model = model
        self.batchnorm = batchnorm
        self.groups = []
        self.by_module = {}
        self.names = {}
        self.parent = {}
        self.consumers = {}
        self.calls = {}
        self.regularized = []
        self.seen_tensors = set()

    # -- union-find over groups (ties)
    def root(self, g):
        while self.parent.get(g, g) is not g:
            g = self.parent[g]
        return g

    def tie(self, a, b):
        ra, rb = self.root(a), self.root(b)
        if ra is not rb:
            self.parent[rb] = ra

    def reg(self, t):
        if t is not None and id(t) not in self.seen_tensors:
            self.seen_tensors.add(id(t))
            self.regularized.append(t)

    def stop_all(self, v, reason):
        if isinstance(v, _V):
            for g, _, _ in v.parts:
                g.stop(reason)

    def stop_args(self, args, reason):
        for a in _flat_args(args):
            self.stop_all(a, reason)

    def new_group(self, name, module, size, kind):
        g = Group(name, module, size, kind)
        self.groups.append(g)
        return g

    def run(self, gm):
        env = {}
        modules = dict(gm.named_modules())
        for node in gm.graph.nodes:
            args = torch.fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
            where = "'%s'" % node.name
            if node.op == "placeholder":
                env[node] = None
            elif node.op == "get_attr":
                env[node] = "const"
            elif node.op == "output":
                for a in _flat_args(args):
                    if isinstance(a, _V):
                        for g, _, _ in a.parts:
                            g.reaches_output = True
                env[node] = None
            elif node.op == "call_module":
                env[node] = self.module(node.target, modules[node.target], args, kwargs, where)
            elif node.op == "call_function":
                env[node] = self.function(node.target, args, kwargs, where)
            elif node.op == "call_method":
                env[node] = self.method(node.target, args, kwargs, where)
        return env

    def module(self, name, m, args, kwargs, where):
        x = args[0] if args else None
        if isinstance(m, _LAYERS):
            self.calls[m] = self.calls.get(m, 0) + 1
            self.reg(m.weight)
            self.reg(m.bias)
            if isinstance(x, _V):
                for g, _, _ in x.parts:
                    g.reaches_layer = True
            self.consumers.setdefault(m, []).append(x if isinstance(x, _V) else None)
            if m in self.by_module:
                g = self.by_module[m]
                g.stop("layer '%s' is called more than once (shared weights)" % name)
            else:
                size = m.out_features if isinstance(m, nn.Linear) else m.out_channels
                g = self.new_group(name, m, size, "layer")
                # The weight's cost is counted through its inputs (consumers); the bias is a cost here.
                g.ins.append((m.weight, "w", 0))
                if m.bias is not None:
                    g.ins.append((m.bias, "b", 0))
                self.by_module[m] = g
            return _V([(g, 0, 1)], "L" if isinstance(m, nn.Linear) else "C", g.size)
        if isinstance(m, _BATCHNORMS):
            return self.batch_norm(name, m, x, where)
        if isinstance(m, _ACT_MODULES) or isinstance(m, _PASS_MODULES):
            return x if isinstance(x, _V) else None
        if isinstance(m, nn.Flatten):
            return self.flatten(x, m.start_dim, m.end_dim, where)
        if isinstance(x, _V) or any(isinstance(a, _V) for a in _flat_args((args, kwargs))):
            self.stop_args((args, kwargs), "feeds %s (%s), which does not pass a positive per-channel scale through" % (type(m).__name__, name))
        return None

    def batch_norm(self, name, m, x, where):
        training = m.training or not m.track_running_stats or m.running_mean is None
        mode = self.batchnorm if self.batchnorm != "auto" else ("affine" if training else "scale")
        if mode == "scale" and training and (not m.track_running_stats or m.running_mean is None):
            mode = "affine"  # no running statistics: it always normalizes by the batch's
        if mode == "scale":
            if m.affine:
                self.reg(m.bias)
            if not isinstance(x, _V):
                return None
            if x.flat or (x.pos == "L" and not isinstance(m, nn.BatchNorm1d)):
                self.stop_all(x, "feeds BatchNorm '%s' along another axis" % name)
                return None
            for g, start, inner in x.parts:
                if inner != 1:
                    g.stop("feeds BatchNorm '%s' that does not line up with its channels" % name)
                    continue
                if m.affine:
                    g.ins.append((m.bias, "b", start))
                if m.running_mean is not None:
                    g.ins.append((m.running_mean, "u", start))
            return x
        # "affine": BN divides the input's scale out; its gamma, beta are a group of their own.
        if isinstance(x, _V):
            self.stop_all(x, "is normalized by BatchNorm '%s' (batch statistics divide its scale out: batchnorm='affine')" % name)
        if not m.affine:
            return None
        self.reg(m.weight)
        self.reg(m.bias)
        if m in self.by_module:
            self.by_module[m].stop("BatchNorm '%s' is called more than once" % name)
            g = self.by_module[m]
        else:
            g = self.new_group(name, m, m.num_features, "batchnorm")
            g.ins.append((m.weight, "b", 0))
            g.ins.append((m.bias, "b", 0))
            self.by_module[m] = g
        return _V([(g, 0, 1)], "C", g.size)

    def flatten(self, x, start_dim, end_dim, where):
        if not isinstance(x, _V):
            return None
        if start_dim != 1 or end_dim != -1:
            self.stop_all(x, "feeds a flatten from dim %s to %s, which the tracer does not follow" % (start_dim, end_dim))
            return None
        if x.pos == "L" and not x.flat:
            return x  # (N, F) already: assumed rank 2
        return _V(x.parts, "L", x.width, flat=True)

    def function(self, f, args, kwargs, where):
        x = args[0] if args else kwargs.get("input")
        if f in _PASS_FUNCTIONS:
            others = list(_flat_args((args[1:], kwargs)))
            if any(isinstance(a, _V) for a in others):
                self.stop_args((args, kwargs), "is used as a parameter of %s" % getattr(f, "__name__", f))
                return None
            return x if isinstance(x, _V) else None
        if f in _FLATTEN:
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            return self.flatten(x, start, end, where)
        if f in _ADD:
            return self.add(args, kwargs, where)
        if f in _MUL:
            return self.mul(f, args, kwargs, where)
        if f in _CAT:
            parts = args[0] if args else kwargs.get("tensors")
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            return self.cat(list(parts), dim, where)
        if f is getattr:
            return None  # x.shape and friends: no values
        if any(isinstance(a, _V) for a in _flat_args((args, kwargs))):
            self.stop_args((args, kwargs), "feeds %s (node %s), which does not pass a positive per-channel scale through" % (getattr(f, "__name__", str(f)), where))
        return None

    def method(self, name, args, kwargs, where):
        x = args[0] if args else None
        if name in _SHAPE_METHODS:
            return None
        if name in _PASS_METHODS:
            if name == "to" and any(isinstance(a, torch.dtype) and not a.is_floating_point for a in _flat_args((args[1:], kwargs))):
                self.stop_all(x, "is cast to a non-float type")
                return None
            return x if isinstance(x, _V) else None
        if name == "flatten":
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            return self.flatten(x, start, end, where)
        if name in ("view", "reshape"):
            shape = args[1:]
            if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
                shape = tuple(shape[0])
            if isinstance(x, _V) and len(shape) == 2 and shape[1] == -1:
                return self.flatten(x, 1, -1, where)
        if name in ("add", "add_"):
            return self.add(args, kwargs, where)
        if name in ("mul", "mul_", "div", "div_"):
            return self.mul(operator.truediv if name.startswith("div") else operator.mul, args, kwargs, where)
        if any(isinstance(a, _V) for a in _flat_args((args, kwargs))):
            self.stop_args((args, kwargs), "feeds .%s() (node %s), which does not pass a positive per-channel scale through" % (name, where))
        return None

    def add(self, args, kwargs, where):
        a = args[0] if args else kwargs.get("input")
        b = args[1] if len(args) > 1 else kwargs.get("other")
        if kwargs.get("alpha", 1) != 1 and isinstance(b, _V):
            pass  # alpha scales b by a constant: the scale still passes
        va, vb = isinstance(a, _V), isinstance(b, _V)
        if not va and not vb:
            return None
        if va != vb:
            other = b if va else a
            if isinstance(other, (int, float)) and other == 0:
                return a if va else b
            what = "a constant" if other == "const" or isinstance(other, (int, float)) else "a value that does not scale with it (an input, or units that cannot scale)"
            self.stop_all(a if va else b, "is added (node %s) to %s" % (where, what))
            return None
        if len(a.parts) == 1 and len(b.parts) == 1 and a.pos == b.pos and a.flat == b.flat:
            (ga, sa, ia), (gb, sb, ib) = a.parts[0], b.parts[0]
            if sa == sb and ia == ib and ga.size == gb.size:
                ga.joined = gb.joined = True
                self.tie(ga, gb)
                return a
        reason = "is joined by a residual add (node %s) with values whose units do not line up with its own" % where
        self.stop_all(a, reason)
        self.stop_all(b, reason)
        return None

    def mul(self, f, args, kwargs, where):
        a = args[0] if args else None
        b = args[1] if len(args) > 1 else kwargs.get("other")
        va, vb = isinstance(a, _V), isinstance(b, _V)
        if not va and not vb:
            return None
        const = lambda v: v == "const" or isinstance(v, (int, float))  # noqa: E731
        if va and not vb and const(b):
            return a
        if vb and not va and const(a) and f not in (operator.truediv, operator.itruediv, torch.div):
            return b
        self.stop_args((a, b), "is multiplied or divided (node %s) by a computed value (gating is not positively homogeneous)" % where)
        return None

    def cat(self, parts, dim, where):
        if not any(isinstance(p, _V) for p in parts):
            return None
        carriers = [p for p in parts if isinstance(p, _V)]
        pos = carriers[0].pos
        axis_ok = (pos == "C" and dim == 1) or (pos == "L" and dim in (-1, 1))
        if not axis_ok or any(c.pos != pos or c.flat for c in carriers):
            self.stop_args(parts, "is concatenated (node %s) along another axis" % where)
            return None
        out, offset = [], 0
        for p in parts:
            if offset is None:
                self.stop_all(p, "is concatenated (node %s) after a value of unknown width" % where)
                continue
            if isinstance(p, _V):
                out.extend((g, offset + s, i) for g, s, i in p.parts)
                offset = None if p.width is None else offset + p.width
            else:
                offset = None
        return _V(out, pos, offset) if out else None


def _flat_args(a):
    if isinstance(a, (list, tuple)):
        for x in a:
            yield from _flat_args(x)
    elif isinstance(a, dict):
        for x in a.values():
            yield from _flat_args(x)
    else:
        yield a


def _finish(tr):
    """Roles, consumers resolved to elements, layers called twice, ties with fixed members."""
    consumers = []
    for m, values in tr.consumers.items():
        width = m.in_features if isinstance(m, nn.Linear) else m.in_channels
        if tr.calls.get(m, 0) > 1 or len(values) > 1:
            for v in values:
                tr.stop_all(v, "is read by a layer called more than once (shared weights)")
            continue
        v = values[0]
        parts = []
        if v is None:
            consumers.append((m, parts))
            continue
        mult = 1
        if isinstance(m, nn.Linear):
            if v.pos != "L":
                tr.stop_all(v, "is read by Linear along an axis other than its last")
                continue
            if v.flat:
                if v.width is None or width % v.width != 0:
                    tr.stop_all(v, "is flattened into a Linear whose inputs do not line up with its channels")
                    continue
                mult = width // v.width
        elif v.pos != "C" or v.flat:
            tr.stop_all(v, "is read by a convolution along an axis other than its channels")
            continue
        for g, start, inner in v.parts:
            s, i = start * mult, inner * mult
            if s + g.size * i > width:
                g.stop("does not line up with the inputs of the layer that reads it")
                continue
            parts.append((g, s, i))
        consumers.append((m, parts))
    for g in tr.groups:
        if not g.reaches_layer and (g.reaches_output or not g.joined):
            if g.reaches_output:
                g.role = "output"
            elif not g.reasons:
                g.stop("its values are not used by any layer or output")
        elif g.reaches_output:
            g.stop("is also an output of the model")
    # Ties: every member of a class with a member that cannot be balanced stays fixed.
    classes = {}
    for g in tr.groups:
        classes.setdefault(tr.root(g), []).append(g)
    ties = []
    for members in classes.values():
        if len(members) < 2:
            continue
        ties.append([g.name for g in members])
        bad = [g for g in members if not g.balanceable]
        for g in members:
            if bad and g not in bad:
                g.stop("is tied (residual add) to '%s', which cannot be balanced" % bad[0].name)
    # A tie class that reads its own units (a layer of the class reads the class) is a loop.
    for m, parts in consumers:
        own = tr.by_module.get(m)
        if own is None:
            continue
        for g, _, _ in parts:
            if tr.root(g) is tr.root(own) and own.balanceable:
                for x in classes[tr.root(own)]:
                    x.stop("its residual stream is read by a layer tied to it (a loop the closed-form sweep does not solve)")
    return consumers, ties


def find_units(model, batchnorm="auto"):
    """The hidden unit groups of `model` from its traced data flow (see the module docstring);
    registration order (find_pairs) when torch.fx cannot trace it."""
    if batchnorm not in ("auto", "scale", "affine"):
        raise ValueError("batchnorm must be 'auto', 'scale' or 'affine'")
    model = getattr(model, "module", model)
    try:
        import torch.fx  # noqa: F401
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001  (any tracing failure: fall back, say why once)
        return _fallback_units(model, "torch.fx could not trace %s (%s: %s); units from registration order" % (type(model).__name__, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
    tr = _Tracer(model, batchnorm)
    names = {m: n for n, m in model.named_modules()}
    tr.run(gm)
    for g in tr.groups:
        g.name = names.get(g.module, g.name)
    consumers, ties = _finish(tr)
    units = Units(tr.groups, ties, consumers, tr.regularized)
    units._root = tr.root
    return units


_WARNED = set()


def _fallback_units(model, reason, pairs=None):
    """Units from (name, layer, next layer) pairs: registration order (find_pairs), or given."""
    if reason is not None and reason not in _WARNED:
        _WARNED.add(reason)
        _log.warning(reason)
    groups, consumers, regularized, by = [], {}, [], {}
    for name, m in model.named_modules():
        if isinstance(m, _LAYERS):
            regularized.append(m.weight)
            if m.bias is not None:
                regularized.append(m.bias)
    for name, m, nxt in (find_pairs(model) if pairs is None else pairs):
        g = Group(name, m, _units(m), "layer")
        g.ins.append((m.weight, "w", 0))
        if m.bias is not None:
            g.ins.append((m.bias, "b", 0))
        g.reaches_layer = True
        groups.append(g)
        by[m] = g
        consumers.setdefault(m, [])
        consumers[nxt] = [(g, 0, _inputs(nxt) // g.size)]
    units = Units(groups, [], list(consumers.items()), regularized, fallback=reason)
    units._root = lambda g: g
    return units


# ---------------------------------------------------------------------------------------------
# Balancing
# ---------------------------------------------------------------------------------------------


def _cost(t, p, acc):
    t = t.detach().to(acc)
    return t * t if p == 2 else t.abs().pow(p)


def _input_cost(m, p, acc):
    """(rows = output units, columns = the layer's inputs) cost matrix, kernel taps summed."""
    c = _cost(m.weight, p, acc)
    if isinstance(m, nn.Linear):
        return c
    c = c.reshape(c.shape[0], c.shape[1], -1).sum(2)
    groups = m.groups
    if groups == 1:
        return c
    co, ci = c.shape[0] // groups, c.shape[1]
    full = torch.zeros(c.shape[0], ci * groups, dtype=acc, device=c.device)
    for k in range(groups):
        full[k * co:(k + 1) * co, k * ci:(k + 1) * ci] = c[k * co:(k + 1) * co]
    return full


class _Problem:
    """Cost blocks between tie classes: IN_r = e^{p x_r} (fin_r + sum M e^{-p x_src}),
    OUT_r = e^{-p x_r} (fout_r + sum M^T e^{p x_dst}), all in float64 on the model's device."""

    def __init__(self, units, p, acc, device):
        self.p = p
        root = units._root
        self.classes = []
        index = {}
        for g in units.groups:
            if not g.balanceable:
                continue
            r = root(g)
            if r not in index:
                index[r] = len(self.classes)
                self.classes.append({"groups": [], "size": g.size})
            self.classes[index[r]]["groups"].append(g)
        self.index = {g: index[root(g)] for c in self.classes for g in c["groups"]}
        n = len(self.classes)
        zeros = lambda k: torch.zeros(k, dtype=acc, device=device)  # noqa: E731
        self.fin = [zeros(c["size"]) for c in self.classes]
        self.fout = [zeros(c["size"]) for c in self.classes]
        self.edges = []  # (src class, dst class, M[dst units, src units])
        owner = {g.module: g for g in units.groups if g.kind == "layer"}
        for c, cl in enumerate(self.classes):
            for g in cl["groups"]:
                for t, kind, start in g.ins:
                    if kind == "b" and t is not None:
                        w = _cost(t, p, acc)
                        w = w.reshape(w.shape[0], -1).sum(1) if w.dim() > 1 else w
                        self.fin[c] += w[start:start + g.size]
        for m, parts in units.consumers:
            cm = _input_cost(m, p, acc)
            own = self.index.get(owner.get(m))
            covered = torch.zeros(cm.shape[1], dtype=torch.bool, device=device)
            for g, start, inner in parts:
                src = self.index.get(g)
                if src is None:
                    continue
                cols = slice(start, start + g.size * inner)
                covered[cols] = True
                block = cm[:, cols].reshape(cm.shape[0], g.size, inner).sum(2)
                if own is None:
                    self.fout[src] += block.sum(0)
                else:
                    self.edges.append((src, own, block))
            if own is not None:
                self.fin[own] += cm[:, ~covered].sum(1)
        self.into = [[] for _ in range(n)]
        self.outof = [[] for _ in range(n)]
        for src, dst, block in self.edges:
            self.into[dst].append((src, block))
            self.outof[src].append((dst, block))
        # Red-black: colour the classes so that no two joined by an edge share a colour.
        colour = [-1] * n
        for c in range(n):
            used = {colour[s] for s, _ in self.into[c]} | {colour[d] for d, _ in self.outof[c]}
            k = 0
            while k in used:
                k += 1
            colour[c] = k
        self.colours = [[c for c in range(n) if colour[c] == k] for k in range(max(colour, default=-1) + 1)]
        # Live units (IN > 0 and OUT > 0: positivity does not depend on the scales); dead ones are
        # left as they are by the sweeps and by the coarse correction.
        zero = [torch.zeros(c["size"], dtype=acc, device=device) for c in self.classes]
        self.live = []
        for c in range(n):
            a, b = self.in_out(zero, c)
            self.live.append(((a > 0) & (b > 0)).to(acc))

    def in_out(self, x, c):
        p = self.p
        a = self.fin[c].clone()
        for s, block in self.into[c]:
            a += block @ torch.exp(-p * x[s])
        b = self.fout[c].clone()
        for d, block in self.outof[c]:
            b += block.t() @ torch.exp(p * x[d])
        return a, b

    def coarse_(self, x):
        """The coarse correction, in place: one common log-shift y_c per tie class (its live
        units), minimising R(x + y) exactly over those shifts. With the classes' totals at x,

            R(y) = sum_c (A_c e^{p y_c} + B_c e^{-p y_c}) + sum_edges T_e e^{p (y_dst - y_src)} + const

        (A: costs into class c from outside the classes, B: out of it to outside, T: between two
        classes; a dead unit's costs count as outside): a convex function of K = #classes
        numbers, minimised by damped Newton on its dense K x K Hessian (a weighted Laplacian plus
        a diagonal: tridiagonal for a chain, the tie/residual graph's otherwise) in float64 on the
        CPU. Removes the layer-wide error modes that unit-wise sweeps need ~depth^2 sweeps to damp.
        Returns False (x unchanged) when the small problem does not solve."""
        p, K = self.p, len(self.classes)
        if K == 0:
            return True
        up = [torch.exp(p * xc) for xc in x]
        dn = [1 / u for u in up]
        lv = self.live
        tot = []  # on the device, one copy to the host
        for c in range(K):
            tot.append((self.fin[c] * up[c] * lv[c]).sum())
            tot.append((self.fout[c] * dn[c] * lv[c]).sum())
        for src, dst, block in self.edges:
            ls, ld = lv[src], lv[dst]
            v = block @ (dn[src] * ls)
            w = block @ (dn[src] * (1 - ls))
            tot.append((up[dst] * ld * v).sum())              # y_dst - y_src
            tot.append((up[dst] * ld * w).sum())              # y_dst
            tot.append((up[dst] * (1 - ld) * v).sum())        # -y_src
        T = torch.stack(tot).to("cpu", torch.float64)
        none = K  # a zero slot of y for an absent side
        ti, si = [], []
        for c in range(K):
            ti += [c, none]
            si += [none, c]
        for src, dst, _ in self.edges:
            ti += [dst, dst, none]
            si += [src, none, src]
        ti, si = torch.tensor(ti), torch.tensor(si)
        keep = T > 0
        T, ti, si = T[keep], ti[keep], si[keep]
        if T.numel() == 0:
            return True

        def evaluate(y, derivs):
            ye = torch.cat([y, torch.zeros(1, dtype=torch.float64)])
            v = T * torch.exp(p * (ye[ti] - ye[si]))
            F = float(v.sum())
            if not derivs:
                return F, None, None
            g = torch.zeros(K + 1, dtype=torch.float64)
            g.index_add_(0, ti, p * v)
            g.index_add_(0, si, -p * v)
            H = torch.zeros(K + 1, K + 1, dtype=torch.float64)
            w = p * p * v
            H.index_put_((ti, ti), w, accumulate=True)
            H.index_put_((si, si), w, accumulate=True)
            H.index_put_((ti, si), -w, accumulate=True)
            H.index_put_((si, ti), -w, accumulate=True)
            return F, g[:K], H[:K, :K]

        y = torch.zeros(K, dtype=torch.float64)
        F, g, H = evaluate(y, True)
        for _ in range(100):
            if not math.isfinite(F) or float(g.abs().max()) <= 1e-14 * F * p:
                break
            ridge = float(H.diagonal().max()) * 1e-14 + 1e-300
            try:
                d = -torch.linalg.solve(H + ridge * torch.eye(K, dtype=torch.float64), g)
            except RuntimeError:
                break
            if not bool(torch.isfinite(d).all()):
                break
            step, accepted = 1.0, False
            for _ls in range(40):
                yn = y + step * d
                Fn, _, _ = evaluate(yn, False)
                if Fn < F or (Fn == F and step == 1.0):
                    y = yn
                    F, g, H = evaluate(y, True)
                    accepted = True
                    break
                step /= 2
            if not accepted:
                break
        if not bool(torch.isfinite(y).all()):
            return False
        for c in range(K):
            x[c] = x[c] + float(y[c]) * lv[c]
        return True

    def deficits(self, x):
        worst = 0.0
        for c in range(len(self.classes)):
            a, b = self.in_out(x, c)
            e = torch.exp(self.p * x[c])
            i, o = e * a, b / e
            live = (a > 0) & (b > 0)
            if bool(live.any()):
                worst = max(worst, float(((i - o).abs() / (i + o))[live].max()))
        return worst


def balance_(model, optimizer=None, p=2, tolerance=1e-7, max_iterations=10000, batchnorm="auto", units=None, coarse=True):
    """Balances `model` in place, on its device, to the global optimum of sum |w|^p over the
    scalings of its hidden units (find_units), and rescales `optimizer`'s state with the weights.

    Iteration (the engine's red-black + coarse correction): red-black sweeps over the tie
    classes (a group of units, or the groups a residual add ties: they share one lambda per
    channel index); each class takes its closed-form optimum lambda = (OUT/IN)^(1/(2p)) given its
    neighbours' current scales. After each sweep (all colours), the coarse correction (coarse=True):
    one common log-shift per tie class, the exact minimum of R over those K shifts (damped Newton
    on the K-variable problem of the classes' cost totals: tridiagonal for a chain, the tie and
    residual graph's Laplacian otherwise), which removes the layer-wide error that plain sweeps
    need ~depth^2 sweeps to damp (a 20-hidden-layer MLP: a few sweeps instead of hundreds); should
    that small solve fail, the sweep stands alone. Until every unit's relative deficit
    |IN - OUT|/(IN + OUT) <= tolerance (or max_iterations sweeps). coarse=False: sweeps only. Costs are summed in
    float64 (float32 on MPS) whatever the weights' dtype; the scaled weights are written back in
    their own dtype, each once. Units whose IN or OUT is 0 (dead) are left as they are.

    Optimizer state: a weight scaled by s has gradient g/s at the same function, so the state is
    rescaled to stay what it would have been had training run on the scaled weights: SGD's
    momentum_buffer and Adam/AdamW's exp_avg by 1/s, exp_avg_sq (and max_exp_avg_sq) by 1/s^2,
    i.e. m*w and v*w^2 unchanged. Other per-parameter tensors of the same shape are left as they
    are, with a warning. No optimizer step is invariant under the rescaling: SGD moves w*s by
    lr*g/s, not by s*lr*g; Adam's normalized step has the same size whatever s; weight decay
    shrinks w*s by lr*wd*w*s. So balancing changes the training trajectory (that is its point:
    the same function, a different place to continue from).

    Returns a dict: RBefore, RAfter, deltaR (RBefore - RAfter, >= 0), iterations (sweeps), converged,
    maxDeficitBefore / maxDeficit (the largest relative deficit before, and after as written back),
    units (balanceable units), groups, scales ({group name: float64 CPU tensor of lambdas}).
    """
    if p <= 0:
        raise ValueError("p must be > 0")
    model = getattr(model, "module", model)
    if units is None:
        units = find_units(model, batchnorm=batchnorm)
    params = list(model.parameters()) + list(model.buffers())
    device = params[0].device if params else torch.device("cpu")
    acc = torch.float32 if device.type == "mps" else torch.float64
    with torch.no_grad():
        r_before = _regularizer(units, p, acc)
        prob = _Problem(units, p, acc, device)
        x = [torch.zeros(c["size"], dtype=acc, device=device) for c in prob.classes]
        before = prob.deficits(x)
        worst, it = before, 0
        while worst > tolerance and it < max_iterations:
            it += 1
            for colour in prob.colours:
                for c in colour:
                    a, b = prob.in_out(x, c)
                    ok = (a > 0) & (b > 0)
                    step = torch.where(ok, (torch.log(b) - torch.log(a)) / (2 * p), torch.zeros_like(a))
                    x[c] = torch.where(ok, step, x[c])
            if coarse:
                prob.coarse_(x)
            worst = prob.deficits(x)
        scales = _apply(units, prob, x, optimizer, acc)
        r_after = _regularizer(units, p, acc)
        after = _Problem(units, p, acc, device).deficits([torch.zeros_like(t) for t in x]) if it else worst
    return {
        "RBefore": r_before,
        "RAfter": r_after,
        "deltaR": r_before - r_after,
        "iterations": it,
        "converged": worst <= tolerance,
        "maxDeficitBefore": before,
        "maxDeficit": after,
        "units": sum(c["size"] for c in prob.classes),
        "groups": [g.name for c in prob.classes for g in c["groups"]],
        "scales": scales,
        "fallback": units.fallback,
    }


def _regularizer(units, p, acc):
    return float(sum(_cost(t, p, acc).sum() for t in units.regularized)) if units.regularized else 0.0


def _apply(units, prob, x, optimizer, acc):
    """Writes lambda into every scaled tensor once (and the optimizer's state)."""
    factors = {}

    def factor(t):
        if id(t) not in factors:
            factors[id(t)] = (t, torch.ones(t.shape, dtype=acc, device=t.device))
        return factors[id(t)][1]

    lam = {}
    for c, cl in enumerate(prob.classes):
        l = torch.exp(x[c])
        for g in cl["groups"]:
            lam[g] = l
            for t, _, start in g.ins:
                f = factor(t)
                f[start:start + g.size] *= l.reshape((-1,) + (1,) * (t.dim() - 1))
    for m, parts in units.consumers:
        cols = None
        for g, start, inner in parts:
            if g not in lam:
                continue
            if cols is None:
                cols = torch.ones(m.weight.shape[1] * (getattr(m, "groups", 1)), dtype=acc, device=m.weight.device)
            cols[start:start + g.size * inner] = torch.repeat_interleave(1 / lam[g], inner)
        if cols is None:
            continue
        w = m.weight
        if isinstance(m, nn.Linear):
            shaped = cols.reshape(1, -1)
        else:
            ci, co = w.shape[1], w.shape[0] // m.groups
            idx = (torch.arange(w.shape[0], device=w.device) // co).reshape(-1, 1) * ci + torch.arange(ci, device=w.device).reshape(1, -1)
            shaped = cols[idx].reshape(w.shape[:2] + (1,) * (w.dim() - 2))
        factor(w).mul_(shaped)
    state = optimizer.state if optimizer is not None else {}
    for t, f in factors.values():
        t.copy_((t.to(acc) * f).to(t.dtype))
        st = state.get(t) if t in state else None
        if not st:
            continue
        for key, v in st.items():
            if not torch.is_tensor(v) or v.shape != t.shape:
                continue
            if key in ("momentum_buffer", "exp_avg"):
                v.copy_((v.to(acc) / f).to(v.dtype))
            elif key in ("exp_avg_sq", "max_exp_avg_sq"):
                v.copy_((v.to(acc) / (f * f)).to(v.dtype))
            else:
                msg = "optimizer state '%s' of %s is not rescaled by balance_ (unknown rule)" % (key, type(optimizer).__name__)
                if msg not in _WARNED:
                    _WARNED.add(msg)
                    _log.warning(msg)
    return {g.name: torch.exp(x[c]).to("cpu", torch.float64) for c, cl in enumerate(prob.classes) for g in cl["groups"]}


def _rank():
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def _float32_b64(values):
    """Little-endian float32 bytes in base64; numpy when there, else struct."""
    try:
        import numpy as np  # noqa: F401  (optional)
        raw = values.to(torch.float32).numpy().astype("<f4").tobytes()
    except ImportError:
        raw = struct.pack("<%df" % values.numel(), *values.tolist())
    return {"dtype": "float32", "b64": base64.b64encode(raw).decode("ascii")}


def _scalar(v):
    return v if math.isfinite(v) else None


class BalanceLogger:
    """Appends balance-log records for `model` to `path` every `every` steps (rank 0 only).

    One layer entry per group of balanceable hidden units (find_units), in data-flow order; groups
    tied by residual adds share one entry (named "a + b + ..."), whose IN and OUT are the tie
    class's (the sums that balance compares)."""

    def __init__(self, model, path, every=50, p=2.0, run=None, pairs=None, b64_min=32, batchnorm="auto"):
        if every < 1:
            raise ValueError("every must be >= 1")
        if p <= 0:
            raise ValueError("p must be > 0")
        model = getattr(model, "module", model)  # DistributedDataParallel / DataParallel
        if pairs is None:
            self.units = find_units(model, batchnorm=batchnorm)
        else:
            names = {id(m): n for n, m in model.named_modules()}
            self.units = _fallback_units(model, None, [(names.get(id(a), type(a).__name__), a, b) for a, b in pairs])
        params = list(model.parameters())
        self._device = params[0].device if params else torch.device("cpu")
        self._acc = torch.float32 if self._device.type == "mps" else torch.float64
        self._classes = _Problem(self.units, float(p), self._acc, self._device).classes
        if not self._classes:
            raise ValueError(
                "no hidden layer found: expected Linear/Conv layers followed (through ReLU-family "
                "activations, dropout, pooling, flatten, residual adds, BatchNorm) by another Linear/Conv; "
                "pass pairs=[(layer, next), ...]" + (" (%s)" % self.units.fallback if self.units.fallback else "")
            )
        self.path = path
        self.every = int(every)
        self.p = float(p)
        self.run = run
        self.b64_min = b64_min
        self.seconds = 0.0  # time spent logging, for measuring the overhead
        self._file = None
        self._last_step = None

    @property
    def layers(self):
        return [" + ".join(g.name for g in c["groups"]) for c in self._classes]

    @torch.no_grad()
    def costs(self):
        """[(name, IN, OUT, weight_norm)] as float64 CPU tensors, computed on the model's device."""
        prob = _Problem(self.units, self.p, self._acc, self._device)
        pieces = []
        for c, cl in enumerate(prob.classes):
            zero = [torch.zeros(k["size"], dtype=self._acc, device=self._device) for k in prob.classes]
            a, b = prob.in_out(zero, c)
            sq = torch.zeros((), dtype=self._acc, device=self._device)
            for g in cl["groups"]:
                for t, kind, start in g.ins:
                    if kind != "u":
                        sq = sq + (t.detach()[start:start + g.size].to(self._acc) ** 2).sum()
            pieces.append(torch.cat([a, b, sq.sqrt().reshape(1)]))
        # One device-to-host copy (one synchronisation) for all layers.
        flat = torch.cat(pieces).to("cpu", torch.float64)
        result, k = [], 0
        for name, cl in zip(self.layers, prob.classes):
            n = cl["size"]
            result.append((name, flat[k:k + n], flat[k + n:k + 2 * n], float(flat[k + 2 * n])))
            k += 2 * n + 1
        return result

    def _array(self, t):
        if t.numel() >= self.b64_min or not bool(torch.isfinite(t).all()):
            return _float32_b64(t)
        return [float(v) for v in t.to(torch.float32).tolist()]

    def log(self, step, **extra):
        """Writes one record for `step` now (rank 0 only). Extra scalars (loss=...) are added."""
        if _rank() != 0:
            return
        started = time.perf_counter()
        layers = [
            {"name": name, "in": self._array(i), "out": self._array(o), "weightNorm": _scalar(norm)}
            for name, i, o, norm in self.costs()
        ]
        rec = {"v": LOG_VERSION}
        if self.run is not None:
            rec["run"] = self.run
        rec.update({"step": int(step), "time": time.time(), "p": self.p, "layers": layers})
        for k, v in extra.items():
            v = float(v.detach()) if torch.is_tensor(v) else v
            rec[k] = _scalar(float(v)) if isinstance(v, (int, float)) else v
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        # One write per line, then flush: the monitor reads whole lines as soon as they land.
        self._file.write(json.dumps(rec, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()
        self._last_step = int(step)
        self.seconds += time.perf_counter() - started

    def step(self, step, **extra):
        """Call after each optimizer step; logs when step % every == 0 (once: not again for a step
        a balance event already logged)."""
        if step % self.every == 0 and int(step) != self._last_step:
            self.log(step, **extra)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BalanceSchedule:
    """Balances `model` (balance_, with `optimizer`'s state) before training and/or every `every`
    steps, and writes each event to the balance log `log` (a BalanceLogger) as a record of the
    balanced state whose `balance` field says what changed:

        {"deltaR": R before - R after, "RBefore": ..., "RAfter": ..., "iterations": ...,
         "maxDeficit": largest relative deficit after, "converged": true}

        schedule = BalanceSchedule(model, optimizer, every=500, at_start=True, log=logger)
        ...  # after each optimizer step:
        schedule.step(step, loss=loss)

    `at_start` balances at construction (step 0). `every=None` balances only then. p defaults to
    the logger's p (else 2). `events` lists every event (the `balance` dicts with their step).
    """

    def __init__(self, model, optimizer=None, every=None, at_start=True, log=None, p=None,
                 tolerance=1e-7, max_iterations=10000, batchnorm="auto"):
        if every is not None and every < 1:
            raise ValueError("every must be >= 1 (or None)")
        self.model = getattr(model, "module", model)
        self.optimizer = optimizer
        self.every = every
        self.log = log
        self.p = float(p if p is not None else (log.p if log is not None else 2.0))
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.batchnorm = batchnorm
        self.events = []
        self._units = {}
        if at_start:
            self.balance(0)

    def _units_now(self):
        # Traced once per pattern of BatchNorm modes ("auto" depends on them).
        key = tuple(m.training for m in self.model.modules() if isinstance(m, _BATCHNORMS))
        if key not in self._units:
            self._units[key] = find_units(self.model, batchnorm=self.batchnorm)
        return self._units[key]

    def balance(self, step, **extra):
        """Balances now and logs the event at `step`; returns balance_'s result."""
        r = balance_(self.model, self.optimizer, p=self.p, tolerance=self.tolerance,
                     max_iterations=self.max_iterations, units=self._units_now())
        event = {"deltaR": _scalar(r["deltaR"]), "RBefore": _scalar(r["RBefore"]), "RAfter": _scalar(r["RAfter"]),
                 "iterations": r["iterations"], "maxDeficit": _scalar(r["maxDeficit"]), "converged": r["converged"]}
        self.events.append(dict(event, step=int(step)))
        if self.log is not None:
            self.log.log(step, balance=event, **extra)
        return r

    def step(self, step, **extra):
        """Call after each optimizer step; balances (and logs) when step % every == 0."""
        if self.every is not None and step % self.every == 0:
            return self.balance(step, **extra)
        return None

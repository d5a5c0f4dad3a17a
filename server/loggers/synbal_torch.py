"""synbal_torch: a balance logger for PyTorch training runs (Synaptic Balance training monitor).

Single file, needs only torch. Every `every` steps it computes, on the model's own device and
under torch.no_grad(), each hidden unit's costs

    IN  = sum |w|^p over the unit's incoming weights, bias included
    OUT = sum |w|^p over its outgoing weights

and appends one JSON line (format: server/schemas/balance-log.schema.json, described in
server/loggers/README.md) that the VS Code monitor tails live. Only rank 0 of a
torch.distributed job writes.

    from synbal_torch import BalanceLogger
    logger = BalanceLogger(model, "runs/balance.jsonl", every=50, run="baseline")
    logger.log(0)                         # the untrained network (optional)
    for step, (x, y) in enumerate(loader, 1):
        ...; loss.backward(); optimizer.step()
        logger.step(step, loss=loss)      # logs when step % every == 0
    logger.close()

Which units: found from the module structure, in registration order (`named_modules()`):
a Linear / Conv1d / Conv2d / Conv3d (groups=1) followed, through any of ReLU, LeakyReLU,
PReLU, Identity, Dropout*, MaxPool*, AvgPool*, AdaptiveAvgPool*, AdaptiveMaxPool* and
Flatten, by another Linear or Conv: the first layer's output units (channels) are hidden
units. Limits: activations applied in forward() as functions (F.relu) and the real data flow
of a custom forward() are invisible, so the chain is the registration order; BatchNorm,
LayerNorm, ReLU6, Tanh, GELU, … end a chain (they do not pass a positive scale through, or
need folding first); residual additions are not seen. For anything else pass the pairs
yourself: BalanceLogger(model, path, pairs=[(model.fc1, model.fc2), ...]).
"""

import base64
import json
import math
import struct
import time

import torch
from torch import nn

LOG_VERSION = 1

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
    """Appends balance-log records for `model` to `path` every `every` steps (rank 0 only)."""

    def __init__(self, model, path, every=50, p=2.0, run=None, pairs=None, b64_min=32):
        if every < 1:
            raise ValueError("every must be >= 1")
        if p <= 0:
            raise ValueError("p must be > 0")
        model = getattr(model, "module", model)  # DistributedDataParallel / DataParallel
        if pairs is None:
            self.pairs = find_pairs(model)
        else:
            names = {id(m): n for n, m in model.named_modules()}
            self.pairs = [(names.get(id(a), type(a).__name__), a, b) for a, b in pairs]
        if not self.pairs:
            raise ValueError(
                "no hidden layer found: expected Linear/Conv layers followed (through ReLU-family "
                "activations, dropout, pooling, flatten) by another Linear/Conv; pass pairs=[(layer, next), ...]"
            )
        self.path = path
        self.every = int(every)
        self.p = float(p)
        self.run = run
        self.b64_min = b64_min
        self.seconds = 0.0  # time spent logging, for measuring the overhead
        self._file = None

    @property
    def layers(self):
        return [name for name, _, _ in self.pairs]

    @torch.no_grad()
    def costs(self):
        """[(name, IN, OUT, weight_norm)] as float64 CPU tensors, computed on the model's device."""
        pieces = []
        for _, layer, nxt in self.pairs:
            w = layer.weight
            acc = torch.float32 if w.device.type == "mps" else torch.float64
            units = w.shape[0]
            cost = (lambda t: t * t) if self.p == 2 else (lambda t: t.abs().pow(self.p))
            inc = cost(w).reshape(units, -1).sum(1, dtype=acc)
            sq = (w * w).sum(dtype=acc)
            if layer.bias is not None:
                inc = inc + cost(layer.bias).to(acc)
                sq = sq + (layer.bias * layer.bias).sum(dtype=acc)
            w2 = nxt.weight
            # Inputs of the next layer: a channel-major Flatten makes input i read unit i // (n / units).
            out = cost(w2).reshape(w2.shape[0], units, -1).sum((0, 2), dtype=acc)
            pieces.append(torch.cat([inc, out, sq.sqrt().reshape(1)]))
        # One device-to-host copy (one synchronisation) for all layers.
        flat = torch.cat([t.to(pieces[0].dtype) for t in pieces]).to("cpu", torch.float64)
        result, k = [], 0
        for (name, layer, _), piece in zip(self.pairs, pieces):
            n = layer.weight.shape[0]
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
        self.seconds += time.perf_counter() - started

    def step(self, step, **extra):
        """Call after each optimizer step; logs when step % every == 0."""
        if step % self.every == 0:
            self.log(step, **extra)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

#!/usr/bin/env python3
"""Synaptic Balance: the torch compute worker.

Started by the extension's language server / CLI (server/src/compute/torchHost.ts) with the
user's interpreter, and kept alive between requests. It holds the cost matrices of one model on
a torch device and answers the products the solvers need.

Protocol (stdin -> stdout), one frame per message in each direction:
    a JSON header on one line (UTF-8, '\\n'-terminated) with a "bytes" field, then exactly that
    many raw bytes of payload (little-endian float64 vectors). Never numbers as JSON.
Bulk tensors (weights, scaled weights) travel through files named in the header, as raw
little-endian arrays. Errors come back as {"ok": false, "error": "..."}; the worker stays up.
It exits when stdin closes (its parent is gone).

Precision: float64 on cpu and cuda. MPS has no float64: there the matrices are float32 and
every product is summed in chunks whose partial sums are combined with compensated (Kahan)
summation, so that the accumulation error does not grow with the row length.
"""
import json
import os
import sys
import time
import traceback

OUT = sys.stdout.buffer
# Anything a library prints must not corrupt the frames on stdout.
sys.stdout = sys.stderr

MPS_CHUNK = 1024


def send(header, payload=b""):
    header = dict(header)
    header["bytes"] = len(payload)
    OUT.write((json.dumps(header) + "\n").encode("utf-8"))
    if payload:
        OUT.write(payload)
    OUT.flush()


def read_frame(stream):
    line = stream.readline()
    if not line:
        return None, b""
    header = json.loads(line)
    n = int(header.get("bytes", 0))
    payload = stream.read(n) if n else b""
    if len(payload) != n:
        raise EOFError("stdin closed inside a frame")
    return header, payload


def pick_device(torch, wanted):
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if wanted == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if has_mps:
            return "mps"
        return "cpu"
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            built = "built with CUDA " + str(torch.version.cuda) if torch.version.cuda else "built without CUDA"
            raise RuntimeError("CUDA is not available to torch " + torch.__version__ + " (" + built + ", " + str(torch.cuda.device_count()) + " devices)")
        return wanted
    if wanted == "mps":
        if not has_mps:
            raise RuntimeError("MPS is not available to torch " + torch.__version__ + " (it needs macOS 12.3+ on Apple silicon and a torch built with MPS)")
        return "mps"
    if wanted == "cpu":
        return "cpu"
    raise RuntimeError("unknown device " + repr(wanted) + "; expected auto, cpu, cuda, cuda:N or mps")


class Worker:
    def __init__(self, torch, np, device):
        self.torch = torch
        self.np = np
        self.device = torch.device(device)
        self.mps = self.device.type == "mps"
        self.acc = torch.float32 if self.mps else torch.float64
        # block id -> (C, weights or None, transposed); C is [rows, cols] as stored.
        self.blocks = {}

    def describe(self):
        torch = self.torch
        name = ""
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        elif self.device.type == "mps":
            name = "Apple GPU"
        return {
            "torch": torch.__version__,
            "device": str(self.device),
            "name": name,
            "float64": not self.mps,
            "threads": torch.get_num_threads(),
        }

    def read_array(self, path, offset, count, dtype):
        np = self.np
        a = np.fromfile(path, dtype="<f8" if dtype == "float64" else "<f4", count=count, offset=offset)
        if a.size != count:
            raise RuntimeError(path + ": expected " + str(count) + " values at byte " + str(offset) + ", found " + str(a.size))
        return self.torch.from_numpy(a)

    def upload(self, h):
        torch = self.torch
        for b in h["blocks"]:
            rows, cols = int(b["rows"]), int(b["cols"])
            host = self.read_array(h["file"], int(b["offset"]), rows * cols, b["dtype"]).reshape(rows, cols)
            dev = host.to(self.device) if not (self.mps and host.dtype == torch.float64) else host.float().to(self.device)
            if b["kind"] == "weights":
                p = int(b["p"])
                c = dev.to(self.acc)
                c = c * c if p == 2 else c.abs()
                weights = dev if b.get("keep") else None
            else:
                c = dev.to(self.acc)
                weights = None
            self.blocks[int(b["id"])] = (c, weights, bool(b.get("transposed")))
        return {"resident": len(self.blocks)}

    def block(self, i):
        if i not in self.blocks:
            raise KeyError("no block " + str(i) + " on " + str(self.device) + " (" + str(len(self.blocks)) + " resident)")
        return self.blocks[i]

    def matvec(self, m, v):
        """m @ v with float64 accumulation, or chunked compensated float32 on MPS."""
        if not self.mps:
            return self.torch.mv(m, v)
        n = m.shape[1]
        total = None
        comp = None
        for k in range(0, n, MPS_CHUNK):
            part = self.torch.mv(m[:, k:k + MPS_CHUNK], v[k:k + MPS_CHUNK])
            if total is None:
                total = part
                comp = self.torch.zeros_like(part)
                continue
            yk = part - comp
            t = total + yk
            comp = (t - total) - yk
            total = t
        return total if total is not None else self.torch.zeros(m.shape[0], dtype=m.dtype, device=m.device)

    def products(self, h, payload):
        torch = self.torch
        v = torch.from_numpy(self.np.frombuffer(payload, dtype="<f8").copy())
        jobs = h["jobs"]
        pos = 0
        outs = []
        # Upload every vector first, then queue every product: one synchronisation at the end.
        for j in jobs:
            c, _, transposed = self.block(int(j["id"]))
            n_t, n_s = (c.shape[1], c.shape[0]) if transposed else (c.shape[0], c.shape[1])
            x = y = None
            if j["x"]:
                x = v[pos:pos + n_s].to(self.device, self.acc)
                pos += n_s
            if j["y"]:
                y = v[pos:pos + n_t].to(self.device, self.acc)
                pos += n_t
            ct = c if not transposed else c.t()
            outs.append((self.matvec(ct, x) if x is not None else None, self.matvec(ct.t(), y) if y is not None else None))
        parts = []
        for row, col in outs:
            if row is not None:
                parts.append(row.to("cpu", torch.float64))
            if col is not None:
                parts.append(col.to("cpu", torch.float64))
        out = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
        return {}, out.numpy().astype("<f8", copy=False).tobytes()

    def scale(self, h, payload):
        """The block's weights times ft per row and fs per column, written to h['file']."""
        torch = self.torch
        c, weights, transposed = self.block(int(h["id"]))
        if weights is None:
            raise RuntimeError("block " + str(h["id"]) + " has no weights on " + str(self.device))
        v = torch.from_numpy(self.np.frombuffer(payload, dtype="<f8").copy())
        rows, cols = weights.shape
        ft = v[:rows].to(self.device, self.acc)
        fs = v[rows:rows + cols].to(self.device, self.acc)
        with open(h["file"], "wb") as f:
            # Row bands bound the temporary float64 copy.
            step = max(1, (1 << 24) // max(1, cols))
            for r in range(0, rows, step):
                band = weights[r:r + step].to(self.acc) * ft[r:r + step, None] * fs[None, :]
                f.write(band.to(weights.dtype).to("cpu").numpy().tobytes())
        return {}

    def handle(self, h, payload):
        op = h.get("op")
        if op == "upload":
            return self.upload(h), b""
        if op == "products":
            return self.products(h, payload)
        if op == "scale":
            return self.scale(h, payload), b""
        if op == "reset":
            self.blocks.clear()
            if self.device.type == "cuda":
                self.torch.cuda.empty_cache()
            return {}, b""
        if op == "wait":
            # Diagnostics: holds the worker busy (cancellation is tested with it).
            time.sleep(float(h.get("seconds", 0)))
            return {}, b""
        if op == "info":
            return self.describe(), b""
        raise RuntimeError("unknown op " + repr(op))


def main():
    wanted = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "auto"
    try:
        import numpy as np
        import torch
    except Exception as e:  # an interpreter without torch (or numpy): say so and stop
        send({"ok": False, "op": "hello", "error": type(e).__name__ + ": " + str(e), "python": sys.executable, "version": sys.version.split()[0]})
        return 3
    try:
        torch.set_num_threads(os.cpu_count() or 1)
        worker = Worker(torch, np, pick_device(torch, wanted))
    except Exception as e:
        send({"ok": False, "op": "hello", "error": str(e), "python": sys.executable, "version": sys.version.split()[0]})
        return 4
    hello = worker.describe()
    hello.update({"ok": True, "op": "hello", "pid": os.getpid(), "python": sys.executable})
    send(hello)
    stdin = sys.stdin.buffer
    while True:
        try:
            h, payload = read_frame(stdin)
        except EOFError:
            return 0
        if h is None:
            return 0
        try:
            reply, data = worker.handle(h, payload)
            reply = dict(reply)
            reply["ok"] = True
            send(reply, data)
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)
            where = (" (" + os.path.basename(tb[-1].filename) + ":" + str(tb[-1].lineno) + ")") if tb else ""
            send({"ok": False, "error": type(e).__name__ + ": " + str(e) + where})


if __name__ == "__main__":
    sys.exit(main())

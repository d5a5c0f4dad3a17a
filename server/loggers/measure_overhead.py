"""Measures what synbal_torch.BalanceLogger costs a training run.

usage: python3 measure_overhead.py [--device cpu|cuda] [--every 50] [--steps 400] [--batch 128]
         [--widths 784,1024,1024,10] [--threads N]

Trains the same MLP (ReLU, SGD, random data) twice from the same seed, without and with the
logger writing to a temporary file every `--every` steps, and reports the time per step, the
time per logged record, and the overhead: logging time / training time (and the wall-clock
difference of the two runs, which is noisier).
"""
import argparse
import os
import sys
import tempfile
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synbal_torch import BalanceLogger  # noqa: E402


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(args, log_path):
    torch.manual_seed(0)
    widths = [int(w) for w in args.widths.split(",")]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).to(args.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)
    x = torch.randn(args.batch, widths[0], device=args.device)
    y = torch.randn(args.batch, widths[-1], device=args.device)
    logger = BalanceLogger(model, log_path, every=args.every) if log_path else None
    for step in range(1, args.warmup + 1):  # warm-up (allocator, kernels), not timed
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    if logger:
        logger.log(0)
        logger.seconds = 0.0
    sync(args.device)
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if logger:
            logger.step(step)
    sync(args.device)
    total = time.perf_counter() - started
    if logger:
        logger.close()
    return total, (logger.seconds if logger else 0.0), sum(p.numel() for p in model.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--widths", default="784,1024,1024,10")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        base, _, params = run(args, None)
        total, logging, _ = run(args, os.path.join(tmp, "balance.jsonl"))
        records = args.steps // args.every
        size = os.path.getsize(os.path.join(tmp, "balance.jsonl"))
    step_ms = 1000 * (total - logging) / args.steps
    print(f"torch {torch.__version__} on {args.device} ({torch.get_num_threads()} threads); MLP {args.widths}, {params:,} parameters, batch {args.batch}")
    print(f"training step: {step_ms:.2f} ms; logged record: {1000 * logging / max(records, 1):.2f} ms ({records} records, {size / max(records + 1, 1):.0f} bytes each)")
    print(f"overhead at every={args.every}: {100 * logging / (total - logging):.3f}% of training time (logging time / training time)")
    print(f"wall clock: {base:.2f} s without, {total:.2f} s with the logger ({100 * (total - base) / base:+.2f}%, includes noise)")


if __name__ == "__main__":
    main()

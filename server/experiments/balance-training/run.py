"""Balance during training: the papers' claims, measured (issue "Balance during training: act, not
only watch").

usage: python3 run.py [--quick] [--out DIR] [--logs DIR] [--seeds N] [--workers N]

Trains, with fixed seeds, a fully connected ReLU net (784-256-256-10) and a small ReLU CNN on a
subset of Fashion-MNIST (Debian's dataset-fashion-mnist, idx files) with SGD, SGD + L2 weight decay
and Adam, in four arms: baseline, balanced at initialisation, balanced every k steps (two k), using
balance_ / BalanceSchedule from server/loggers/synbal_torch.py; then a ReLU RNN on a sequential-sum
task, balanced after training by the same closed form per unit (synbal_torch does not follow
recurrence), under Gaussian noise on the hidden state. Writes to DIR (default: this folder):
runs.csv, curves.csv, rnn.csv, the figures (PNG, when matplotlib is there) and README.md with the
tables and the verdicts computed from the numbers. --quick: one seed, a few steps, a tiny subset
(the unit test's smoke run). --logs: balance logs (JSONL, the monitor's format) of seed 0 of each arm.
"""

import argparse
import csv
import gzip
import math
import multiprocessing as mp
import os
import struct
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "loggers"))
import synbal_torch  # noqa: E402
from synbal_torch import BalanceLogger, BalanceSchedule  # noqa: E402

DATA = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
NETS = ("mlp", "cnn")
OPTS = ("sgd", "sgd+l2", "adam")

# The full run (the numbers in README.md) and the smoke run (--quick).
FULL = dict(seeds=5, train_n=20000, test_n=10000, curve_n=2000, batch=64,
            steps={"mlp": 1500, "cnn": 1000}, eval_every=50, ks=(25, 250), threshold=0.80,
            rnn_seeds=5, rnn_steps=3000, rnn_hidden=32, rnn_T=10, rnn_test=1000, rnn_draws=20)
QUICK = dict(seeds=1, train_n=512, test_n=256, curve_n=128, batch=32,
             steps={"mlp": 20, "cnn": 10}, eval_every=10, ks=(5, 10), threshold=0.30,
             rnn_seeds=1, rnn_steps=30, rnn_hidden=8, rnn_T=5, rnn_test=64, rnn_draws=2)
LR = {"sgd": 0.05, "sgd+l2": 0.05, "adam": 1e-3}
WD = {"sgd": 0.0, "sgd+l2": 5e-3, "adam": 0.0}
SIGMAS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)


def arms(cfg):
    k1, k2 = cfg["ks"]
    return ["baseline", "init", "every%d" % k1, "every%d" % k2]


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def _idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data(cfg):
    def pair(prefix):
        x = _idx(os.path.join(DATA, prefix + "-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
        y = _idx(os.path.join(DATA, prefix + "-labels-idx1-ubyte.gz")).astype(np.int64)
        return x, y
    xtr, ytr = pair("train")
    xte, yte = pair("t10k")
    mean, std = xtr.mean(), xtr.std()
    rng = np.random.RandomState(1234)  # one fixed training subset for every run
    idx = rng.permutation(len(xtr))[:cfg["train_n"]]
    norm = lambda a: torch.from_numpy((a - mean) / std).unsqueeze(1)  # noqa: E731
    return (norm(xtr[idx]), torch.from_numpy(ytr[idx]),
            norm(xte[:cfg["test_n"]]), torch.from_numpy(yte[:cfg["test_n"]]))


# ---------------------------------------------------------------------------------------------
# Networks and one training run
# ---------------------------------------------------------------------------------------------

def make_net(name):
    if name == "mlp":  # the paper's fully connected ReLU net, 784-256-256-10
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(  # a small ReLU CNN: 8 and 16 channels, 64 dense units
        nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))


def make_opt(name, params):
    if name == "adam":
        return torch.optim.Adam(params, lr=LR[name])
    return torch.optim.SGD(params, lr=LR[name], weight_decay=WD[name])


def deficits(logger):
    """(total relative deficit sum|IN-OUT| / sum(IN+OUT), the paper's sum (IN-OUT)^2, R = sum w^2)."""
    num = den = sq = 0.0
    for _, i, o, _ in logger.costs():
        num += float((i - o).abs().sum())
        den += float((i + o).sum())
        sq += float(((i - o) ** 2).sum())
    r = float(sum(float((t.detach().double() ** 2).sum()) for t in logger.units.regularized))
    return num / den if den > 0 else float("nan"), sq, r


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    loss = correct = 0.0
    for s in range(0, len(x), batch):
        out = model(x[s:s + batch])
        loss += float(nn.functional.cross_entropy(out, y[s:s + batch], reduction="sum"))
        correct += float((out.argmax(1) == y[s:s + batch]).sum())
    model.train()
    return correct / len(x), loss / len(x)


def train_run(job):
    net, opt_name, arm, seed, cfg, data, logs = job
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    model = make_net(net)
    opt = make_opt(opt_name, model.parameters())
    log_path = os.path.join(logs, "%s-%s-%s.jsonl" % (net, opt_name.replace("+", "-"), arm)) if logs and seed == 0 else None
    if log_path and os.path.exists(log_path):
        os.remove(log_path)
    logger = BalanceLogger(model, log_path or os.devnull, every=cfg["eval_every"], run="%s %s %s" % (net, opt_name, arm))
    every = int(arm[5:]) if arm.startswith("every") else None
    bal_s = 0.0
    schedule = None
    if arm != "baseline":
        t0 = time.perf_counter()
        schedule = BalanceSchedule(model, opt, every=every, at_start=(arm == "init"), tolerance=1e-6)
        bal_s += time.perf_counter() - t0
    cx, cy = xte[:cfg["curve_n"]], yte[:cfg["curve_n"]]
    curves, recent = [], []

    def record(step):
        acc, loss = evaluate(model, cx, cy)
        rel, sq, r = deficits(logger)
        tl = float(np.mean(recent)) if recent else float("nan")
        curves.append(dict(net=net, opt=opt_name, arm=arm, seed=seed, step=step, test_acc=acc, test_loss=loss,
                           train_loss=tl, rel_deficit=rel, deficit_sq=sq, R=r))
        if log_path:
            logger.log(step, loss=tl, testAcc=acc)

    record(0)
    if log_path and schedule is not None and schedule.events:  # the balance at step 0
        ev = dict(schedule.events[-1]); ev.pop("step")
        logger.log(0, balance=ev)
    g = torch.Generator().manual_seed(10_000 + seed)
    n, b = len(xtr), cfg["batch"]
    perm, pos = torch.randperm(n, generator=g), 0
    train_s = 0.0
    for step in range(1, cfg["steps"][net] + 1):
        if pos + b > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos:pos + b]
        pos += b
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
        loss.backward()
        opt.step()
        train_s += time.perf_counter() - t0
        recent.append(float(loss))
        if step % cfg["eval_every"] == 0:  # measured before this step's balance: the deficit grown since the last one
            record(step)
            recent = []
        if schedule is not None:
            t0 = time.perf_counter()
            r = schedule.step(step)
            bal_s += time.perf_counter() - t0
            if r is not None and log_path:
                ev = dict(schedule.events[-1]); ev.pop("step")
                logger.log(step, balance=ev)
    logger.close()
    acc, loss = evaluate(model, xte, yte)
    hit = next((c["step"] for c in curves if c["test_acc"] >= cfg["threshold"]), None)
    events = schedule.events if schedule is not None else []
    row = dict(net=net, opt=opt_name, arm=arm, seed=seed, final_acc=acc, final_loss=loss,
               steps_to_threshold=hit if hit is not None else "", train_s=train_s, balance_s=bal_s,
               overhead=bal_s / train_s, balances=len(events),
               mean_sweeps=float(np.mean([e["iterations"] for e in events])) if events else 0.0,
               final_rel_deficit=curves[-1]["rel_deficit"], final_R=curves[-1]["R"])
    return row, curves


# ---------------------------------------------------------------------------------------------
# The RNN: sequential sums, balanced after training, under hidden-state noise
# ---------------------------------------------------------------------------------------------

def rnn_forward(p, x, sigma=0.0, gen=None):
    """h_t = relu(W_in x_t + W_hh h_{t-1} + b) + sigma * noise; y = W_out h_T + c."""
    h = torch.zeros(x.shape[0], p["W_hh"].shape[0], dtype=x.dtype)
    for t in range(x.shape[1]):
        h = torch.relu(x[:, t] @ p["W_in"].t() + h @ p["W_hh"].t() + p["b"])
        if sigma > 0:
            h = h + sigma * torch.randn(h.shape, generator=gen, dtype=h.dtype)
    return h @ p["W_out"].t() + p["c"]


def rnn_costs(p):
    """Per hidden unit IN = |W_in[i]|^2 + sum_{j != i} W_hh[i,j]^2 + b_i^2 and OUT = sum_{k != i}
    W_hh[k,i]^2 + |W_out[:,i]|^2 (the self-loop is unchanged by a scaling: in neither)."""
    hh = p["W_hh"] ** 2
    d = torch.diagonal(hh)
    cin = (p["W_in"] ** 2).sum(1) + hh.sum(1) - d + p["b"] ** 2
    cout = hh.sum(0) - d + (p["W_out"] ** 2).sum(0)
    return cin, cout


def balance_rnn(p, tolerance=1e-10, max_sweeps=100000):
    """Per-unit balancing (L2) of the ReLU RNN, weights tied over time: unit after unit (Gauss-Seidel),
    lambda_i = (OUT_i / IN_i)^(1/4): incoming row (W_in, W_hh, b) x lambda, outgoing column (W_hh,
    W_out) / lambda; until every relative deficit <= tolerance. float64, in place. Returns sweeps."""
    n = p["W_hh"].shape[0]
    for sweep in range(1, max_sweeps + 1):
        for i in range(n):
            cin, cout = rnn_costs(p)
            if cin[i] <= 0 or cout[i] <= 0:
                continue  # dead unit: no optimum, left alone
            lam = float((cout[i] / cin[i]) ** 0.25)
            p["W_in"][i] *= lam
            p["b"][i] *= lam
            p["W_hh"][i, :] *= lam
            p["W_hh"][:, i] /= lam
            p["W_out"][:, i] /= lam
        cin, cout = rnn_costs(p)
        live = (cin > 0) & (cout > 0)
        worst = float(((cin - cout).abs() / (cin + cout))[live].max()) if bool(live.any()) else 0.0
        if worst <= tolerance:
            return sweep
    return max_sweeps


def rnn_batch(n, T, gen):
    x = torch.rand(n, T, 1, generator=gen, dtype=torch.float64) * 2 - 1
    return x, x.sum(1)


def rnn_run(job):
    seed, cfg = job
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    H, T = cfg["rnn_hidden"], cfg["rnn_T"]
    k = 1 / math.sqrt(H)
    p = {"W_in": torch.empty(H, 1).uniform_(-1, 1), "W_hh": torch.eye(H) * 0.5 + torch.empty(H, H).uniform_(-k, k) * 0.5,
         "b": torch.zeros(H), "W_out": torch.empty(1, H).uniform_(-k, k), "c": torch.zeros(1)}
    p = {n: v.double().requires_grad_() for n, v in p.items()}
    opt = torch.optim.Adam(p.values(), lr=3e-3)
    gen = torch.Generator().manual_seed(20_000 + seed)
    for _ in range(cfg["rnn_steps"]):
        x, y = rnn_batch(128, T, gen)
        opt.zero_grad()
        loss = ((rnn_forward(p, x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    p = {n: v.detach().clone() for n, v in p.items()}
    xt, yt = rnn_batch(cfg["rnn_test"], T, torch.Generator().manual_seed(30_000 + seed))
    before = {n: v.clone() for n, v in p.items()}
    cin0, cout0 = rnn_costs(before)
    sweeps = balance_rnn(p)
    cin1, cout1 = rnn_costs(p)
    out0, out1 = rnn_forward(before, xt), rnn_forward(p, xt)
    same = float((out0 - out1).abs().max())
    rows = []
    for sigma in SIGMAS:
        for which, params in (("before", before), ("after", p)):
            g = torch.Generator().manual_seed(40_000 + seed)  # the same noise draws before and after
            errs = [float(((rnn_forward(params, xt, sigma, g) - yt) ** 2).mean()) for _ in range(cfg["rnn_draws"] if sigma > 0 else 1)]
            rows.append(dict(seed=seed, sigma=sigma, balanced=which, mse=float(np.mean(errs)), mse_std=float(np.std(errs))))
            # The same noise relative to this network's own hidden-state RMS (balancing rescales h).
            g = torch.Generator().manual_seed(40_000 + seed)
            rel = sigma * _hidden_rms(params, xt)
            errs = [float(((rnn_forward(params, xt, rel, g) - yt) ** 2).mean()) for _ in range(cfg["rnn_draws"] if sigma > 0 else 1)]
            rows.append(dict(seed=seed, sigma=sigma, balanced=which + "-relative", mse=float(np.mean(errs)), mse_std=float(np.std(errs))))
    info = dict(seed=seed, sweeps=sweeps, max_abs_output_change=same, clean_mse=float(((out0 - yt) ** 2).mean()),
                R_before=float(sum((v ** 2).sum() for n, v in before.items() if n != "c")),
                R_after=float(sum((v ** 2).sum() for n, v in p.items() if n != "c")),
                rel_deficit_before=float((cin0 - cout0).abs().sum() / (cin0 + cout0).sum()),
                rel_deficit_after=float((cin1 - cout1).abs().sum() / (cin1 + cout1).sum()),
                hidden_rms_before=float(_hidden_rms(before, xt)), hidden_rms_after=float(_hidden_rms(p, xt)))
    return rows, info


def _hidden_rms(p, x):
    h = torch.zeros(x.shape[0], p["W_hh"].shape[0], dtype=x.dtype)
    acc = 0.0
    for t in range(x.shape[1]):
        h = torch.relu(x[:, t] @ p["W_in"].t() + h @ p["W_hh"].t() + p["b"])
        acc += float((h ** 2).mean())
    return math.sqrt(acc / x.shape[1])


# ---------------------------------------------------------------------------------------------
# Statistics, tables, figures
# ---------------------------------------------------------------------------------------------

def ms(v):
    v = [float(a) for a in v]
    return (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0) if v else (float("nan"), float("nan"))


def welch(a, b):
    """(mean a - mean b, its standard error, t)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a.mean() - b.mean()
    if len(a) < 2 or len(b) < 2:
        return d, float("nan"), float("nan")
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return d, se, (d / se if se > 0 else float("inf") if d else 0.0)


def spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            w.writerow({k: ("%.10g" % v if isinstance(v, float) else v) for k, v in r.items()})


def figures(out, cfg, curves, rnn_rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    colours = dict(zip(arms(cfg), ("black", "tab:blue", "tab:orange", "tab:green")))
    for metric, fname, ylabel, logy in (("test_acc", "accuracy.png", "test accuracy (2,000 test images)", False),
                                        ("rel_deficit", "deficit.png", "relative deficit Σ|IN−OUT| / Σ(IN+OUT)", True),
                                        ("train_loss", "train-loss.png", "training loss (mean of the last 50 steps)", True)):
        fig, axes = plt.subplots(len(NETS), len(OPTS), figsize=(13, 7), squeeze=False)
        for i, net in enumerate(NETS):
            for j, opt in enumerate(OPTS):
                ax = axes[i][j]
                for arm in arms(cfg):
                    cs = [c for c in curves if c["net"] == net and c["opt"] == opt and c["arm"] == arm]
                    steps = sorted({c["step"] for c in cs})
                    if metric == "train_loss":
                        steps = [s for s in steps if s > 0]
                    m = np.array([np.mean([c[metric] for c in cs if c["step"] == s]) for s in steps])
                    sd = np.array([np.std([c[metric] for c in cs if c["step"] == s]) for s in steps])
                    ax.plot(steps, m, color=colours[arm], label=arm, lw=1.5)
                    if not logy:
                        ax.fill_between(steps, m - sd, m + sd, color=colours[arm], alpha=0.15)
                if logy:
                    ax.set_yscale("log")
                if metric == "test_acc":
                    ax.set_ylim(max(0.0, cfg["threshold"] - 0.3), None)
                    ax.axhline(cfg["threshold"], color="grey", ls=":", lw=1)
                ax.set_title("%s, %s" % (net.upper(), opt.upper()))
                ax.set_xlabel("step")
                if j == 0:
                    ax.set_ylabel(ylabel)
                ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, fname), dpi=90)
        plt.close(fig)
        made.append(fname)
    fig, ax = plt.subplots(figsize=(6, 4))
    for which, colour in (("before", "tab:red"), ("after", "tab:blue")):
        pts = [(s, ms([r["mse"] for r in rnn_rows if r["sigma"] == s and r["balanced"] == which])) for s in SIGMAS if s > 0]
        ax.errorbar([s for s, _ in pts], [m for _, (m, _) in pts], yerr=[sd for _, (_, sd) in pts], marker="o", color=colour,
                    label="as trained" if which == "before" else "balanced", capsize=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("σ of the Gaussian noise added to the hidden state each step")
    ax.set_ylabel("output MSE (sequential sum)")
    ax.set_title("ReLU RNN: noise robustness before / after balancing")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "rnn-noise.png"), dpi=90)
    plt.close(fig)
    made.append("rnn-noise.png")
    return made


def fmt(m, s, digits=4):
    return "%.*f ± %.*f" % (digits, m, digits, s)


def report(out, cfg, rows, curves, rnn_rows, rnn_info, wall, made, quick):
    L = []
    A = arms(cfg)
    k1, k2 = cfg["ks"]
    n_seeds = cfg["seeds"]
    L.append("# Balance during training: the papers' claims, measured\n")
    L.append("Generated by `npm run experiment:training` (`python3 server/experiments/balance-training/run.py`%s) "
             "in %.0f s wall time on this machine; every number below is computed by that script from its own runs "
             "(raw numbers: `runs.csv`, `curves.csv`, `rnn.csv`). Fixed seeds: the same command gives the same "
             "accuracies and deficits (timings vary).\n" % (" --quick" if quick else "", wall))
    L.append("## Set-up (and what was shrunk to fit ~15 CPU-minutes on 2 shared cores)\n")
    L.append("- Data: Fashion-MNIST (Debian `dataset-fashion-mnist`), a fixed random subset of **%d of the 60,000 "
             "training images**, standardised; final accuracy/loss on the first **%d test images**, curves on the first %d. "
             "Batch %d, **%d steps for the MLP, %d for the CNN** (%.1f / %.1f epochs of the subset)."
             % (cfg["train_n"], cfg["test_n"], cfg["curve_n"], cfg["batch"], cfg["steps"]["mlp"], cfg["steps"]["cnn"],
                cfg["steps"]["mlp"] * cfg["batch"] / cfg["train_n"], cfg["steps"]["cnn"] * cfg["batch"] / cfg["train_n"]))
    L.append("- Networks: MLP 784-256-256-10 (ReLU, fully connected like the paper's nets, narrower), "
             "CNN conv5×5(8)-pool-conv5×5(16)-pool-fc64-fc10 (ReLU; 8 + 16 + 64 balanceable units). PyTorch default init.")
    L.append("- Optimisers: SGD lr %g (no momentum); SGD lr %g + L2 weight decay %g; Adam lr %g." % (LR["sgd"], LR["sgd+l2"], WD["sgd+l2"], LR["adam"]))
    L.append("- Arms: `baseline`; `init` = `balance_` once before the first step (`BalanceSchedule(at_start=True)`); "
             "`every%d` / `every%d` = `BalanceSchedule(every=k, at_start=False)`, i.e. balanced after every k-th step "
             "(optimizer state rescaled with the weights, as `balance_` does). L2 balance (p = 2), tolerance 1e-6. "
             "%d seed%s per arm (seed = init and batch order)." % (k1, k2, n_seeds, "s" if n_seeds > 1 else ""))
    L.append("- Balance deficit: the total relative deficit Σ|IN−OUT| / Σ(IN+OUT) over all balanceable units "
             "(0 = balanced), measured every %d steps *before* that step's balancing (so for the every-k arms it "
             "shows what grew back since the last balance). `curves.csv` also has the paper's Σ(IN−OUT)² and R = Σw²." % cfg["eval_every"])
    L.append("- Steps to %.0f%%: the first evaluation step (every %d) at which the curve accuracy reaches %.2f; "
             "blank/`–` if never within the run." % (100 * cfg["threshold"], cfg["eval_every"], cfg["threshold"]))
    L.append("- Wall-time overhead: time inside `balance_` (via `BalanceSchedule`) / time of the training steps, per run "
             "(one thread per process, two processes at once: timings are noisy).\n")

    def sel(net, opt, arm):
        return [r for r in rows if r["net"] == net and r["opt"] == opt and r["arm"] == arm]

    L.append("## Results: Fashion-MNIST (mean ± std over %d seed%s)\n" % (n_seeds, "s" if n_seeds > 1 else ""))
    L.append("| net | optimiser | arm | final test acc | final test loss | steps to %.0f%% (reached) | final rel. deficit | balances (sweeps each) | overhead |"
             % (100 * cfg["threshold"]))
    L.append("|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for net in NETS:
        for opt in OPTS:
            base = sel(net, opt, "baseline")
            for arm in A:
                rs = sel(net, opt, arm)
                if not rs:
                    continue
                acc, loss = ms([r["final_acc"] for r in rs]), ms([r["final_loss"] for r in rs])
                hits = [r["steps_to_threshold"] for r in rs if r["steps_to_threshold"] != ""]
                h = ms(hits) if hits else None
                dfc = ms([r["final_rel_deficit"] for r in rs])
                ov = ms([r["overhead"] for r in rs])
                L.append("| %s | %s | %s | %s | %s | %s (%d/%d) | %.3g ± %.2g | %s | %s |" % (
                    net.upper(), opt, arm, fmt(*acc), fmt(*loss), ("%.0f ± %.0f" % h) if h else "–", len(hits), len(rs),
                    dfc[0], dfc[1],
                    ("%d (%.1f)" % (rs[0]["balances"], np.mean([r["mean_sweeps"] for r in rs]))) if arm != "baseline" else "–",
                    ("%.2f %%" % (100 * ov[0])) if arm != "baseline" else "–"))
                if arm != "baseline":
                    d, se, t = welch([r["final_acc"] for r in rs], [r["final_acc"] for r in base])
                    dl, sel_, tl = welch([r["final_loss"] for r in rs], [r["final_loss"] for r in base])
                    bh = [r["steps_to_threshold"] if r["steps_to_threshold"] != "" else cfg["steps"][net] + cfg["eval_every"] for r in base]
                    ah = [r["steps_to_threshold"] if r["steps_to_threshold"] != "" else cfg["steps"][net] + cfg["eval_every"] for r in rs]
                    ds, ses, ts = welch(ah, bh)
                    verdicts.append(dict(net=net, opt=opt, arm=arm, dacc=d, seacc=se, tacc=t, dloss=dl, seloss=sel_, tloss=tl,
                                         dsteps=ds, sesteps=ses, tsteps=ts))
    L.append("")
    L.append("Overhead = balancing time / training-step time of the same run. Sweeps = red-black sweeps `balance_` needed per call.\n")

    # Claim 1
    T = 2.31  # two-sided 5 % for ~8 degrees of freedom (Welch, 5 vs 5)
    L.append("## Claim 1: \"balancing prior to learning, or during learning in alternation with gradient steps, can improve learning speed and final performance\"\n")
    L.append("Difference to the baseline of the same net and optimiser (arm − baseline, ± standard error; **bold** where |t| > %.2f, "
             "about p < 0.05 for %d vs %d seeds). Steps: fewer is faster (a run that never reached the threshold counts as steps + %d).\n"
             % (T, n_seeds, n_seeds, cfg["eval_every"]))
    L.append("| net | optimiser | arm | Δ final acc (points) | Δ final loss | Δ steps to %.0f%% |" % (100 * cfg["threshold"]))
    L.append("|---|---|---|---|---|---|")

    def cell(d, se, t, scale=1.0, digits=2):
        s = "%+.*f ± %.*f" % (digits, d * scale, digits, se * scale) if not math.isnan(se) else "%+.*f" % (digits, d * scale)
        return "**%s**" % s if not math.isnan(t) and abs(t) > T else s
    better = worse = 0
    for v in verdicts:
        L.append("| %s | %s | %s | %s | %s | %s |" % (v["net"].upper(), v["opt"], v["arm"], cell(v["dacc"], v["seacc"], v["tacc"], 100),
                                                    cell(v["dloss"], v["seloss"], v["tloss"], 1, 3), cell(v["dsteps"], v["sesteps"], v["tsteps"], 1, 0)))
        sig_acc = not math.isnan(v["tacc"]) and abs(v["tacc"]) > T
        sig_steps = not math.isnan(v["tsteps"]) and abs(v["tsteps"]) > T
        if (sig_acc and v["dacc"] > 0) or (sig_steps and v["dsteps"] < 0):
            better += 1
        if (sig_acc and v["dacc"] < 0) or (sig_steps and v["dsteps"] > 0):
            worse += 1
    L.append("")
    best = max(verdicts, key=lambda v: v["dacc"]) if verdicts else None
    worst = min(verdicts, key=lambda v: v["dacc"]) if verdicts else None
    L.append("**Verdict (computed).** Of %d (net, optimiser, balancing arm) comparisons, %d show a significant improvement "
             "(higher final accuracy or fewer steps to %.0f%%) and %d a significant degradation; the rest are within seed noise. "
             % (len(verdicts), better, 100 * cfg["threshold"], worse))
    if best and worst:
        L.append("Largest accuracy change: %+.2f points (%s, %s, %s); smallest: %+.2f points (%s, %s, %s)."
                 % (100 * best["dacc"], best["net"].upper(), best["opt"], best["arm"], 100 * worst["dacc"], worst["net"].upper(), worst["opt"], worst["arm"]))
    if n_seeds < 2:
        L.append("(One seed: no significance test, no verdict.)\n")
    else:
        L.append("So here the claim holds %s.\n" % ("nowhere: balancing did not improve learning speed or final performance in any setting"
                                                   if better == 0 else "only in %d of %d settings (see the bold cells), not in general" % (better, len(verdicts))
                                                   if better < len(verdicts) / 2 else "in most settings"))
    # Claim 2
    L.append("## Claim 2: \"network balance can be used to assess learning progress\"\n")
    L.append("If the deficit tracks convergence it should fall (or rise) monotonically while the loss falls. Per run, the Spearman "
             "rank correlation ρ between the relative deficit and the training loss over the evaluation steps (ρ ≈ +1: the deficit "
             "falls with the loss; ≈ 0: unrelated; < 0: it rises while the loss falls), and the deficit at the start and end "
             "(baseline arm; the every-k arms are reset by design; `deficit.png` shows all arms).\n")
    L.append("| net | optimiser | ρ(deficit, train loss) | ρ(deficit, test loss) | rel. deficit at step 0 → end | train loss first → last |")
    L.append("|---|---|---|---|---|---|")
    rhos = []
    for net in NETS:
        for opt in OPTS:
            rr, rt, d0, d1, l0, l1 = [], [], [], [], [], []
            for s in range(n_seeds):
                cs = sorted([c for c in curves if c["net"] == net and c["opt"] == opt and c["arm"] == "baseline" and c["seed"] == s], key=lambda c: c["step"])
                cs2 = [c for c in cs if c["step"] > 0]
                if len(cs2) < 3:
                    continue
                rr.append(spearman([c["rel_deficit"] for c in cs2], [c["train_loss"] for c in cs2]))
                rt.append(spearman([c["rel_deficit"] for c in cs2], [c["test_loss"] for c in cs2]))
                d0.append(cs[0]["rel_deficit"]); d1.append(cs[-1]["rel_deficit"])
                l0.append(cs2[0]["train_loss"]); l1.append(cs2[-1]["train_loss"])
            if not rr:
                continue
            rhos.append((net, opt, np.mean(rr)))
            L.append("| %s | %s | %s | %s | %.3f → %.3f | %.3f → %.3f |" % (net.upper(), opt, fmt(*ms(rr), digits=2), fmt(*ms(rt), digits=2),
                                                                     np.mean(d0), np.mean(d1), np.mean(l0), np.mean(l1)))
    L.append("")
    good = [r for r in rhos if r[2] > 0.7]
    L.append("**Verdict (computed).** The deficit tracks the training loss (mean ρ > 0.7) in %d of %d settings%s. "
             % (len(good), len(rhos), (": " + ", ".join("%s/%s" % (n.upper(), o) for n, o, _ in good)) if good else ""))
    L.append("Where it does not, the deficit moves independently of (or against) the loss, so it is not a convergence monitor there.\n")

    # RNN
    L.append("## Noise robustness (Stock et al.): ReLU RNN on sequential sums\n")
    L.append("A ReLU RNN (1 input, %d hidden, 1 linear output; h_t = relu(W_in x_t + W_hh h_{t−1} + b), y = W_out h_T + c) learns the "
             "sum of %d inputs uniform in [−1, 1] (Adam lr 3e-3, %d steps of batch 128, no weight decay; %d seed%s). After training it is "
             "balanced (L2) unit by unit with the closed form λ_i = (OUT_i/IN_i)^(1/4), weights tied over time: IN_i = |W_in[i]|² + "
             "Σ_{j≠i} W_hh[i,j]² + b_i², OUT_i = Σ_{k≠i} W_hh[k,i]² + |W_out[:,i]|² (the self-loop is unchanged by the scaling). "
             "`synbal_torch.balance_` does not follow recurrence (a weight used at every step is a layer called more than once: visible), "
             "so the script implements this per-unit balancing itself. Then Gaussian noise N(0, σ²) is added to every hidden state at "
             "every step (the same draws before and after; %d draws of %d test sequences) and the output MSE is measured.\n"
             % (cfg["rnn_hidden"], cfg["rnn_T"], cfg["rnn_steps"], cfg["rnn_seeds"], "s" if cfg["rnn_seeds"] > 1 else "", cfg["rnn_draws"], cfg["rnn_test"]))
    if rnn_info:
        L.append("Same function without noise: the largest |output change| after balancing is %.2g (float64), over %d seeds; "
                 "clean MSE %s; R = Σw² %.2f → %.2f; relative deficit %.3f → %.2g; sweeps %s; hidden-state RMS %.3f → %.3f.\n"
                 % (max(i["max_abs_output_change"] for i in rnn_info), len(rnn_info), fmt(*ms([i["clean_mse"] for i in rnn_info])),
                    np.mean([i["R_before"] for i in rnn_info]), np.mean([i["R_after"] for i in rnn_info]),
                    np.mean([i["rel_deficit_before"] for i in rnn_info]), np.mean([i["rel_deficit_after"] for i in rnn_info]),
                    "/".join(str(i["sweeps"]) for i in rnn_info),
                    np.mean([i["hidden_rms_before"] for i in rnn_info]), np.mean([i["hidden_rms_after"] for i in rnn_info])))
    L.append("Last column: the same, with the noise's σ taken relative to each network's own hidden-state RMS (σ·RMS), since "
             "balancing rescales the hidden states and a fixed absolute σ is then a different signal-to-noise ratio.\n")
    L.append("| σ | MSE as trained | MSE balanced | ratio balanced / trained (per seed, mean) | ratio, σ relative to hidden RMS |")
    L.append("|---|---|---|---|---|")
    ratios = {}
    for s in SIGMAS:
        b = [r["mse"] for r in rnn_rows if r["sigma"] == s and r["balanced"] == "before"]
        a = [r["mse"] for r in rnn_rows if r["sigma"] == s and r["balanced"] == "after"]
        rat = [x / y for x, y in zip(a, b)]
        ratios[s] = np.mean(rat)
        br = [r["mse"] for r in rnn_rows if r["sigma"] == s and r["balanced"] == "before-relative"]
        ar = [r["mse"] for r in rnn_rows if r["sigma"] == s and r["balanced"] == "after-relative"]
        ratr = np.mean([x / y for x, y in zip(ar, br)]) if br else float("nan")
        L.append("| %g | %s | %s | %.3f | %.3f |" % (s, fmt(*ms(b), digits=5), fmt(*ms(a), digits=5), np.mean(rat), ratr))
    L.append("")
    noisy = [s for s in SIGMAS if s > 0]
    lower = [s for s in noisy if ratios[s] < 0.95]
    higher = [s for s in noisy if ratios[s] > 1.05]
    L.append("**Verdict (computed).** Without noise the balanced RNN computes the same outputs (to %.1g). Under noise, balancing "
             "lowers the output error by more than 5 %% at σ ∈ {%s} and raises it by more than 5 %% at σ ∈ {%s} (ratio at σ = %g: %.2f)."
             % (max(i["max_abs_output_change"] for i in rnn_info) if rnn_info else float("nan"), ", ".join("%g" % s for s in lower) or "none",
                ", ".join("%g" % s for s in higher) or "none", noisy[len(noisy) // 2], ratios[noisy[len(noisy) // 2]]))
    notes = os.path.join(HERE, "notes.md")
    if not quick and os.path.exists(notes):  # hand-written reading of the committed run
        with open(notes) as f:
            L.append("\n## Discussion (hand-written, `notes.md`, about the committed run)\n")
            L.append(f.read().strip())
    L.append("\n## Figures\n")
    for f in made:
        L.append("![%s](%s)\n" % (f, f))
    if not made:
        L.append("(matplotlib was not installed: no figures.)\n")
    L.append("## Files\n")
    L.append("- `run.py`: the whole experiment (one command; `--quick` is the unit test's smoke run).")
    L.append("- `notes.md`: the hand-written discussion above (the rest of this file is generated).")
    L.append("- `runs.csv`: one row per training run (final accuracy/loss on the test set, steps to threshold, timings, balances).")
    L.append("- `curves.csv`: every %d steps per run: curve accuracy and loss, training loss, relative deficit, Σ(IN−OUT)², R." % cfg["eval_every"])
    L.append("- `rnn.csv`: output MSE per seed, σ and before/after balancing.")
    L.append("- `accuracy.png`, `deficit.png`, `train-loss.png`, `rnn-noise.png`.")
    L.append("- `--logs DIR` writes the balance log (JSONL) of seed 0 of every arm, with its balance events, for the training monitor.")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def read_csv(path):
    """Rows of a CSV this script wrote, numbers as numbers (ints where integral, '' kept)."""
    def conv(k, v):
        if v == "" or k in ("net", "opt", "arm", "balanced"):
            return v
        f = float(v)
        return int(f) if k in ("seed", "step", "steps_to_threshold", "balances") else f
    with open(path, newline="") as f:
        return [{k: conv(k, v) for k, v in r.items()} for r in csv.DictReader(f)]


def _init_worker():
    torch.set_num_threads(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--logs", default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite README.md and the figures from runs.csv / curves.csv in --out (the RNN part, seconds, is run again)")
    a = ap.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    if a.seeds:
        cfg["seeds"] = cfg["rnn_seeds"] = a.seeds
    os.makedirs(a.out, exist_ok=True)
    if a.logs:
        os.makedirs(a.logs, exist_ok=True)
    started = time.time()
    torch.set_num_threads(1)
    if a.report_only:
        rows, curves = read_csv(os.path.join(a.out, "runs.csv")), read_csv(os.path.join(a.out, "curves.csv"))
        rres = [rnn_run(j) for j in [(seed, cfg) for seed in range(cfg["rnn_seeds"])]]
        rnn_rows = [r for rr, _ in rres for r in rr]
        write_csv(os.path.join(a.out, "rnn.csv"), rnn_rows)
        made = figures(a.out, cfg, curves, rnn_rows)
        import re
        prev = open(os.path.join(a.out, "README.md")).read() if os.path.exists(os.path.join(a.out, "README.md")) else ""
        m = re.search(r"in (\d+) s wall time", prev)
        report(a.out, cfg, rows, curves, rnn_rows, [i for _, i in rres], float(m.group(1)) if m else float("nan"), made, a.quick)
        print("rewrote %s" % os.path.join(a.out, "README.md"))
        return
    data = load_data(cfg)
    jobs = [(net, opt, arm, seed, cfg, data, a.logs) for net in ("cnn", "mlp") for opt in OPTS for arm in arms(cfg) for seed in range(cfg["seeds"])]
    rjobs = [(seed, cfg) for seed in range(cfg["rnn_seeds"])]
    rows, curves, rnn_rows, rnn_info = [], [], [], []
    if a.workers > 1:
        with mp.get_context("fork").Pool(a.workers, initializer=_init_worker) as pool:
            rfut = pool.map_async(rnn_run, rjobs)
            for i, (row, cs) in enumerate(pool.imap(train_run, jobs)):
                rows.append(row)
                curves.extend(cs)
                print("[%4.0fs] %d/%d %s %s %s seed %d: acc %.4f" % (time.time() - started, i + 1, len(jobs), row["net"], row["opt"], row["arm"], row["seed"], row["final_acc"]), flush=True)
            rres = rfut.get()
    else:
        for job in jobs:
            row, cs = train_run(job)
            rows.append(row)
            curves.extend(cs)
        rres = [rnn_run(j) for j in rjobs]
    for rr, info in rres:
        rnn_rows.extend(rr)
        rnn_info.append(info)
    order = {n: i for i, n in enumerate(NETS)}
    rows.sort(key=lambda r: (order[r["net"]], OPTS.index(r["opt"]), arms(cfg).index(r["arm"]), r["seed"]))
    write_csv(os.path.join(a.out, "runs.csv"), rows)
    write_csv(os.path.join(a.out, "curves.csv"), curves)
    write_csv(os.path.join(a.out, "rnn.csv"), rnn_rows)
    made = figures(a.out, cfg, curves, rnn_rows)
    wall = time.time() - started
    report(a.out, cfg, rows, curves, rnn_rows, rnn_info, wall, made, a.quick)
    print("wrote %s (%.0f s)" % (os.path.join(a.out, "README.md"), wall))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch reference of forecast(1)'s training step, for bench/forecast.sh.

The same model (torch.nn.LSTM of the same input, hidden and layers, a
torch.nn.Linear head from the last step's output to the horizon), the same
windows (the training part of the same series, standardised with the
training part's mean and population standard deviation, every window whose
targets lie inside it, shuffled each epoch, batches of --batch), the same
step (MSE, backward, global-norm clipping at 5, Adam).  Prints the
training steps per second at each thread count asked for and the best:

    torch threads=1 steps=2000 seconds=3.21 steps_per_s=623.1
    torch best threads=1 steps_per_s=623.1

Only the speed is compared; the learning itself is forecast's to show.
"""
import argparse
import csv
import sys
import time

import numpy as np
import torch


def read_column(path, column, time_column):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    j = header.index(column) if column in header else int(column) - 1
    if time_column is not None and header[j] == time_column:
        sys.exit("forecast_torch: the target is the time column")
    return np.array([float(r[j]) for r in rows[1:] if r], dtype=np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series")
    ap.add_argument("--target", required=True)
    ap.add_argument("--time", default=None)
    ap.add_argument("--window", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--valid", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    x = read_column(a.series, a.target, a.time)
    n = len(x)
    ntrain = n - int(np.floor(a.valid * n))
    mean, std = x[:ntrain].mean(), x[:ntrain].std()
    s = ((x - mean) / (std if std > 0 else 1.0)).astype(np.float32)
    W, H = a.window, a.horizon
    ends = np.arange(W - 1, ntrain - H)          # last input row of each window
    if len(ends) < 1:
        sys.exit("forecast_torch: no training window")
    idx = ends[:, None] + np.arange(-W + 1, 1)[None, :]       # (N, W)
    tgt = ends[:, None] + np.arange(1, H + 1)[None, :]        # (N, H)
    X = torch.from_numpy(s[idx]).unsqueeze(-1)                # (N, W, 1)
    Y = torch.from_numpy(s[tgt])                              # (N, H)

    best = None
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        torch.manual_seed(a.seed)
        rng = np.random.default_rng(a.seed)
        lstm = torch.nn.LSTM(1, a.hidden, a.layers)
        head = torch.nn.Linear(a.hidden, H)
        params = list(lstm.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=a.lr)
        order, pos = rng.permutation(len(ends)), 0

        def step():
            nonlocal order, pos
            b = order[pos:pos + a.batch]
            pos += a.batch
            if pos >= len(order):
                order, pos = rng.permutation(len(ends)), 0
            xb = X[b].transpose(0, 1)                         # (W, B, 1) time-major
            y, _ = lstm(xb)
            loss = torch.nn.functional.mse_loss(head(y[-1]), Y[b])
            opt.zero_grad(set_to_none=False)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()

        for _ in range(a.warmup):
            step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        secs = time.perf_counter() - t0
        rate = a.steps / secs
        print(f"torch threads={threads} steps={a.steps} seconds={secs:.3f} "
              f"steps_per_s={rate:.1f}", flush=True)
        if best is None or rate > best[1]:
            best = (threads, rate)
    print(f"torch best threads={best[0]} steps_per_s={best[1]:.1f}")


if __name__ == "__main__":
    main()

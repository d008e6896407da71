"""PyTorch baseline for `cargo xtask bench`: the same classifier shapes, CPU only.

Prints one JSON line per path, with the keys lstm-bench uses:
  torch-nn-lstm   nn.LSTM(batch_first=True) → last step → Linear
  torch-book-cell the chapter's hand-written LSTMCell (x2h/h2h) unrolled in Python

Usage: python scripts/bench_torch.py [--runs 5] [--batch 100] [--hidden 128] [--seq 28]
"""

import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BookLSTMCell(nn.Module):
    """The chapter's cell: x2h/h2h linear layers of 4H, gates i, f, g, o."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = nn.Linear(input_size, 4 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size)
        std = 1.0 / math.sqrt(hidden_size)
        for w in self.parameters():
            w.data.uniform_(-std, std)

    def forward(self, x, hidden):
        hx, cx = hidden
        gates = self.x2h(x) + self.h2h(hx)
        i, f, g, o = gates.chunk(4, 1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        cy = cx * f + i * g
        hy = o * torch.tanh(cy)
        return hy, cy


class BookModel(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.hidden = hidden
        self.lstm = BookLSTMCell(28, hidden)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        h = x.new_zeros(x.size(0), self.hidden)
        c = x.new_zeros(x.size(0), self.hidden)
        for t in range(x.size(1)):
            h, c = self.lstm(x[:, t, :], (h, c))
        return self.fc(h)


class LayerModel(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def measure(runs, iters, step):
    for _ in range(2):
        step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) * 1e3 / iters)
    return statistics.median(times)


def bench(name, model, batch, seq, runs):
    x = torch.randn(batch, seq, 28) * 0.3
    y = torch.arange(batch) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def train_step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    train_step()
    iters = max(1, min(50, int(0.3 / (time.perf_counter() - t0))))
    train_ms = measure(runs, iters, train_step)

    def infer_step():
        with torch.no_grad():
            model(x)

    infer_ms = measure(runs, iters * 2, infer_step)
    print(json.dumps({
        "path": name,
        "train_ms": round(train_ms, 3),
        "train_samples_per_s": round(batch * 1e3 / train_ms),
        "infer_ms": round(infer_ms, 3),
        "infer_samples_per_s": round(batch * 1e3 / infer_ms),
    }), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seq", type=int, default=28)
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", os.cpu_count() or 1)))
    torch.manual_seed(0)
    bench("torch-nn-lstm", LayerModel(a.hidden), a.batch, a.seq, a.runs)
    bench("torch-book-cell", BookModel(a.hidden), a.batch, a.seq, a.runs)


if __name__ == "__main__":
    main()

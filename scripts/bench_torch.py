"""PyTorch baseline for `cargo xtask bench`, CPU only.

--scenario ID: one scenario of the table (the same workloads as `lstm-bench scenario ID`,
  see SCENARIOS below), one JSON line with the same keys; 2 threads unless TORCH_THREADS.
  The variable-length rows (packed-*: pack_padded_sequence(enforce_sorted=False) over
  LENGTHS; padmean-*: a full batch of the mean length) read each row's final h (h_n).
--ceiling: a 2048³ f32 torch.matmul, one JSON line with its GFLOP/s (the practical peak).
--mnist-run ITERS: seconds to train `lstm mnist`'s default model (nn.LSTM(28, 128) -> last
  step -> Linear, SGD 0.1) for ITERS batches of 64, on 2 threads: what the whole default
  run (8600 iterations) is compared with.
--one: one row of the scaling table of `cargo xtask bench --scaling`, the workload of
  `lstm-bench one fused B H T`: torch-nn-lstm below at --batch/--hidden/--seq, one JSON
  line with the keys lstm-bench prints (train_ms, infer_ms, peak_rss_mib, ...); 2 threads
  unless TORCH_THREADS.
Otherwise (the MNIST-shape comparison of `cargo xtask bench --scaling`), both models below,
one JSON line each, with the keys lstm-bench uses; all cores unless TORCH_THREADS:
  torch-nn-lstm   nn.LSTM(28, H, batch_first=True) → last step → Linear(H → 10)
  torch-book-cell the chapter's hand-written LSTMCell (x2h/h2h) unrolled in Python
A training iteration is forward, cross-entropy, backward and an SGD step (lr 0.01) on a
fixed batch (x ~ 0.3·N(0, 1) of shape (B, T, 28), labels i % 10); inference is the forward
pass under no_grad. Each figure is the median over --runs runs, after 2 warm-up
iterations, of the mean time per iteration; a run is as many iterations as fit in about
0.3 s (1 to 50; inference twice as many), as in crates/bench/src/main.rs.

Usage: python scripts/bench_torch.py --scenario ID [--warmup 3] [--seconds 0.5]
       python scripts/bench_torch.py --ceiling
       python scripts/bench_torch.py --mnist-run 8600
       python scripts/bench_torch.py --one [--runs 5] [--batch 100] [--hidden 128] [--seq 28]
       python scripts/bench_torch.py [--runs 5] [--batch 100] [--hidden 128] [--seq 28]
"""

import argparse
import json
import math
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence


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


def bench(name, model, batch, seq, runs, shape=None):
    """Times training and inference of `model`; prints one JSON line (`shape`'s keys after
    the path; with a shape, also the process's peak RSS and the thread count, as
    `lstm-bench one` does)."""
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
    row = {"path": name}
    row.update(shape or {})
    row.update({
        "train_ms": round(train_ms, 3),
        "train_samples_per_s": round(batch * 1e3 / train_ms),
        "infer_ms": round(infer_ms, 3),
        "infer_samples_per_s": round(batch * 1e3 / infer_ms),
    })
    if shape:
        # ru_maxrss is in KiB on Linux (lstm-bench reads VmHWM, the same figure).
        row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        row["threads"] = torch.get_num_threads()
    print(json.dumps(row), flush=True)


def lcg_lengths(batch=64, lo=10, hi=100, seed=12):
    """The lengths of crates/bench/src/packed.rs: Knuth's MMIX LCG from `seed`, each
    `lo + (state >> 33) % (hi - lo + 1)`."""
    state, out = seed, []
    for _ in range(batch):
        state = (state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out.append(lo + (state >> 33) % (hi - lo + 1))
    return out


LENGTHS = lcg_lengths()
MEAN_LEN = (sum(LENGTHS) + len(LENGTHS) // 2) // len(LENGTHS)  # rounded half up


# The scenario table; must match crates/bench/src/scenarios.rs and packed.rs (the xtask
# checks the shape fields of both sides' JSON lines). mode: train-forward | train-final |
# infer | stream | train-state | infer-state (h_n of the last layer → Linear).
def _row(family, mode, **kw):
    s = dict(family=family, mode=mode, batch=100, seq=28, input=28, hidden=128, layers=1,
             directions=1, packed=False)
    s.update(kw)
    return s


def _varlen(layers, directions, train, packed):
    seq = max(LENGTHS) if packed else MEAN_LEN
    return _row("lstm", "train-state" if train else "infer-state", batch=len(LENGTHS),
                seq=seq, input=64, hidden=256, layers=layers, directions=directions,
                packed=packed)


_LSTM2 = dict(batch=64, seq=100, input=64, hidden=256, layers=2)
SCENARIOS = {
    "lstm-train-forward": _row("lstm", "train-forward"),
    "lstm-train-final": _row("lstm", "train-final"),
    "lstm-infer": _row("lstm", "infer"),
    "gru-train": _row("gru", "train-forward"),
    "gru-infer": _row("gru", "infer"),
    "bilstm-train": _row("lstm", "train-forward", directions=2),
    "bilstm-train-state": _row("lstm", "train-state", directions=2),
    "lstm2-train": _row("lstm", "train-forward", **_LSTM2),
    "lstm2-infer": _row("lstm", "infer", **_LSTM2),
    "lstm2-infer-b8": _row("lstm", "infer", **{**_LSTM2, "batch": 8}),
    "stream": _row("lstm", "stream", batch=1, seq=100),
}
for _name, _layers, _dirs in [("lstm", 1, 1), ("bilstm", 1, 2), ("lstm2", 2, 1),
                              ("bilstm2", 2, 2)]:
    for _mode, _train in [("train", True), ("infer", False)]:
        SCENARIOS[f"packed-{_name}-{_mode}"] = _varlen(_layers, _dirs, _train, True)
        SCENARIOS[f"padmean-{_name}-{_mode}"] = _varlen(_layers, _dirs, _train, False)


class ScenarioModel(nn.Module):
    """nn.LSTM / nn.GRU (batch_first) → out[:, -1] → Linear(D·H → 10)."""

    def __init__(self, s):
        super().__init__()
        rnn = nn.LSTM if s["family"] == "lstm" else nn.GRU
        self.rnn = rnn(s["input"], s["hidden"], num_layers=s["layers"], batch_first=True,
                       bidirectional=s["directions"] == 2)
        self.fc = nn.Linear(s["hidden"] * s["directions"], 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])

    def from_state(self, x, lengths=None):
        """Each row's final h of the last layer (directions concatenated) → Linear; the
        rows packed by `lengths` when given (packed every call, as a training loop does)."""
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(x)
        if isinstance(h_n, tuple):
            h_n = h_n[0]
        layers, dirs = self.rnn.num_layers, 2 if self.rnn.bidirectional else 1
        last = h_n.view(layers, dirs, h_n.size(1), h_n.size(2))[-1]
        return self.fc(last.transpose(0, 1).reshape(h_n.size(1), -1))


def _iteration(s):
    model = ScenarioModel(s)
    y = torch.arange(s["batch"]) % 10
    if s["mode"] in ("train-state", "infer-state"):
        x = torch.randn(s["batch"], s["seq"], s["input"]) * 0.3
        lengths = torch.tensor(LENGTHS, dtype=torch.int64) if s["packed"] else None
        if s["mode"] == "infer-state":
            def infer_state():
                with torch.no_grad():
                    model.from_state(x, lengths)
            return infer_state
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def train_state():
            opt.zero_grad()
            F.cross_entropy(model.from_state(x, lengths), y).backward()
            opt.step()
        return train_state
    if s["mode"] == "stream":
        lstm = model.rnn
        xs = [torch.randn(s["batch"], 1, s["input"]) * 0.3 for _ in range(s["seq"])]

        def stream():
            with torch.no_grad():
                hc = None
                for x in xs:
                    _, hc = lstm(x, hc)
        return stream
    x = torch.randn(s["batch"], s["seq"], s["input"]) * 0.3
    if s["mode"] == "infer":
        def infer():
            with torch.no_grad():
                model(x)
        return infer
    # train-final: PyTorch has no separate final-state path; the same model as train-forward.
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def train():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return train


def run_scenario(sid, warmup, seconds):
    """Warm-up, then iterations timed one by one for about `seconds`; the median in ms."""
    if sid not in SCENARIOS:
        raise SystemExit(f"unknown scenario {sid}: {' | '.join(SCENARIOS)}")
    s = SCENARIOS[sid]
    step = _iteration(s)
    t0 = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - t0 < seconds / 4:
        step()
        done += 1
    times = []
    t1 = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - t1 < seconds and len(times) < 500):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    row = {"id": sid}
    row.update({k: v for k, v in s.items() if k != "mode"})
    # The real steps (the sum of the lengths), and for a packed row the lengths themselves.
    row["steps"] = sum(LENGTHS) if s["packed"] else s["batch"] * s["seq"]
    if s["packed"]:
        row["lengths"] = " ".join(map(str, LENGTHS))
    row.update(train=s["mode"].startswith("train"), ms=round(statistics.median(times), 4),
               iters=len(times), warmup=done, threads=torch.get_num_threads())
    return row


def ceiling(n=2048, reps=10):
    """Median GFLOP/s of an n³ f32 torch.matmul (after 2 warm-up products)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.matmul(a, b)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t)
    ms = statistics.median(times) * 1e3
    return {"ceiling_n": n, "ms": round(ms, 3), "gflops": round(2 * n**3 / ms / 1e6, 2),
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def mnist_run(iters, batch=64, hidden=128, lr=0.1):
    """Seconds to train `lstm mnist`'s default model the way its run does: nn.LSTM(28, H)
    -> last step -> Linear(H, 10), cross-entropy, SGD at `lr`, `iters` batches of `batch`
    images (28 rows x 28 pixels; random values, made before the clock starts, so only the
    training is timed)."""
    model = LayerModel(hidden)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    data = [(torch.rand(batch, 28, 28), torch.randint(0, 10, (batch,))) for _ in range(64)]
    t = time.perf_counter()
    for k in range(iters):
        x, y = data[k % len(data)]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return {"path": "torch-nn-lstm-mnist-run", "iters": iters, "batch": batch,
            "seconds": round(time.perf_counter() - t, 3), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seq", type=int, default=28)
    p.add_argument("--scenario")
    p.add_argument("--ceiling", action="store_true")
    p.add_argument("--one", action="store_true")
    p.add_argument("--mnist-run", type=int, metavar="ITERS")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seconds", type=float, default=0.5)
    a = p.parse_args()
    torch.manual_seed(0)
    if a.scenario or a.ceiling or a.one or a.mnist_run:
        torch.set_num_threads(int(os.environ.get("TORCH_THREADS", 2)))
        if a.mnist_run:
            print(json.dumps(mnist_run(a.mnist_run)), flush=True)
        elif a.ceiling:
            print(json.dumps(ceiling()), flush=True)
        elif a.one:
            shape = {"batch": a.batch, "hidden": a.hidden, "seq": a.seq, "input": 28}
            bench("torch-nn-lstm", LayerModel(a.hidden), a.batch, a.seq, a.runs, shape)
        else:
            print(json.dumps(run_scenario(a.scenario, a.warmup, a.seconds)), flush=True)
        return
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", os.cpu_count() or 1)))
    bench("torch-nn-lstm", LayerModel(a.hidden), a.batch, a.seq, a.runs)
    bench("torch-book-cell", BookModel(a.hidden), a.batch, a.seq, a.runs)


if __name__ == "__main__":
    main()

"""Loads an `lstm mnist --model layer` run's weights into PyTorch and tests them.

    python scripts/torch_roundtrip.py runs/mnist-<time> [hidden] [layers]

Prints PyTorch's test accuracy of our exported model.safetensors, then saves PyTorch's
state dict as <run>/torch-state-dict.safetensors, which `lstm evaluate --checkpoint <run>
--weights <run>/torch-state-dict.safetensors` evaluates back in Rust. Needs torch, numpy
and safetensors.
"""

import gzip
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

class LSTMModel(torch.nn.Module):
    def __init__(self, input_dim=28, hidden_dim=128, layer_dim=1, output_dim=10):
        super().__init__()
        self.lstm = torch.nn.LSTM(input_dim, hidden_dim, layer_dim, batch_first=True)
        self.fc = torch.nn.Linear(hidden_dim, output_dim)
    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])

run = sys.argv[1]
hidden = int(sys.argv[2]) if len(sys.argv) > 2 else 128
layers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
model = LSTMModel(hidden_dim=hidden, layer_dim=layers)
model.load_state_dict(load_file(os.path.join(run, "model.safetensors")))
data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist")
d = gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz")).read()[16:]
l = gzip.open(os.path.join(data, "t10k-labels-idx1-ubyte.gz")).read()[8:]
x = torch.tensor(np.frombuffer(d, dtype=np.uint8).reshape(-1, 28, 28).astype(np.float32) / 255 - 0.5)
y = torch.tensor(np.frombuffer(l, dtype=np.uint8).astype(np.int64))
with torch.no_grad():
    acc = (model(x).argmax(1) == y).float().mean().item()
print(f"PyTorch accuracy of our exported weights: {acc:.4f}")
out = os.path.join(run, "torch-state-dict.safetensors")
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
print(f"wrote {out}")

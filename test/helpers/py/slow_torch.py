"""A TorchScript model that takes a chosen time per call, for the tests that need a slow model
(robustness_models.py, golden_models.py): a loop of 256x256 steps, calibrated on this machine."""

import time

import torch


class Slow(torch.nn.Module):
    steps: int
    class0_wins: bool

    def __init__(self, steps: int, class0_wins: bool):
        super().__init__()
        self.steps = steps
        self.class0_wins = class0_wins
        self.w = torch.nn.Parameter(torch.eye(256) * 0.5)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 256) + x.sum()
        for _ in range(self.steps):
            h = torch.tanh(h @ self.w + 0.1)
        if self.class0_wins:
            return torch.cat([h[:, :1] + 1.0, h[:, 1:3]], dim=1)
        return h[:, :3]


def slow_module(seconds: float, class0_wins: bool = False):
    """A scripted Slow that takes about `seconds` per call here (at least 1000 steps): timed on a
    warm probe, since TorchScript optimizes on the first runs."""
    probe = torch.jit.script(Slow(1000, class0_wins))
    with torch.inference_mode():
        for _ in range(3):
            probe(torch.zeros(1, 4))
        t = time.perf_counter()
        probe(torch.zeros(1, 4))
        per_step = (time.perf_counter() - t) / 1000
    return torch.jit.script(Slow(max(1000, int(seconds / per_step)), class0_wins))

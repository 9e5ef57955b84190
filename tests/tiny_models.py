"""Tiny models with hand-checkable answers, shared by the tests."""

from torch import nn


class FigureOne(nn.Module):
    """The paper's Figure 1: input (1 unit) -> 4 fully connected ReLU layers of width 4 -> output (1 unit),
    plus a skip from input to output: 4^4 + 1 = 257 paths."""

    def __init__(self):
        super().__init__()
        self.fc = nn.ModuleList([nn.Linear(1, 4)] + [nn.Linear(4, 4) for _ in range(3)])
        self.relu = nn.ModuleList([nn.ReLU() for _ in range(4)])
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = x
        for fc, relu in zip(self.fc, self.relu):
            h = relu(fc(h))
        return self.out(h) + x

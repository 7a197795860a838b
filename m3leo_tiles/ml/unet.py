"""A plain-torch UNet of fdlsar's shape (spaceml-org/M3LEO, models/unet_utils/unet.py).

Double 3x3 conv (BatchNorm, ReLU) blocks, `depth` max-poolings, bilinear x2 upsampling with
skip concatenation, a 1x1 head. base=32, depth=4 gives fdlsar's 32-512 channels (~7.85 M
parameters, reflect padding as theirs); base=8, depth=2 is the CPU-sized one the fast runs and
tests use. No torchvision: next to the CPU torch build it does not import.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadInput

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]  # torch's Conv2d modes


def padding_mode(name: str) -> PaddingMode:
    """A config's padding mode, checked here rather than as a traceback from Conv2d."""
    modes: tuple[PaddingMode, ...] = get_args(PaddingMode)
    for mode in modes:
        if name == mode:
            return mode
    raise BadInput(f"model.padding_mode {name!r}: use one of {', '.join(modes)}")


def _block(cin: int, cout: int, padding_mode: PaddingMode) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, padding_mode=padding_mode, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, base: int = 32, depth: int = 4,
                 padding_mode: PaddingMode = "reflect") -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or base < 1 or depth < 1:
            raise ValueError("UNet needs positive channel counts and depth")
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList([_block(in_channels, widths[0], padding_mode)] + [
            _block(widths[i], widths[i + 1], padding_mode) for i in range(depth)])
        # bilinear upsampling keeps the deepest width, as fdlsar's 768->256 ... 96->32 decoder
        self.up = nn.ModuleList()
        prev = widths[depth]
        for i in range(depth - 1, -1, -1):
            self.up.append(_block(prev + widths[i], widths[i], padding_mode))
            prev = widths[i]
        self.head = nn.Conv2d(prev, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for block in self.up:
            s = skips.pop()
            x = F.interpolate(x, size=s.shape[-2:], mode="bilinear", align_corners=True)
            x = block(torch.cat([s, x], dim=1))
        return self.head(x)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""A plain-torch Vision Transformer encoder and the dense heads that fine-tune it.

The encoder is the MAE paper's (He et al. 2022, facebookresearch/mae): a strided-conv patch
embedding, fixed 2-D sine-cosine positions, pre-norm transformer blocks, a final LayerNorm.
The positions are computed for whatever token grid arrives, so an encoder pretrained on one
image size fine-tunes on another with no interpolation. There is no class token: every task
here is dense, and the heads decode each token back to its own patch of pixels. No timm, no
torchvision (next to the CPU torch build they do not import).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadInput


@dataclass(frozen=True)
class ViTShape:
    """Encoder size. ViT-B/16 (M3LEO's vit_b_sar_16) is the default; `tiny` is for CPUs."""

    in_channels: int
    patch: int = 16
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        for key in ("in_channels", "patch", "dim", "depth", "heads"):
            if int(getattr(self, key)) < 1:
                raise BadInput(f"model.vit.{key} {getattr(self, key)} must be at least 1")
        if self.dim % self.heads or self.dim % 4:
            raise BadInput(f"model.vit.dim {self.dim} must be a multiple of 4 and of "
                           f"model.vit.heads {self.heads}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, in_channels: int, node: Any) -> ViTShape:
        """From a config's model.vit node (patch, dim, depth, heads, mlp_ratio)."""
        known = {"patch", "dim", "depth", "heads", "mlp_ratio"}
        node = dict(node or {})
        bad = sorted(set(node) - known)
        if bad:
            raise BadInput(f"model.vit: unknown key {bad[0]!r} (use {', '.join(sorted(known))})")
        ints = {k: int(v) for k, v in node.items() if k != "mlp_ratio"}
        return cls(in_channels, **ints, mlp_ratio=float(node.get("mlp_ratio", 4.0)))


def sincos_positions(gh: int, gw: int, dim: int) -> torch.Tensor:
    """[gh * gw, dim]: half the dimensions encode the row, half the column (MAE's layout)."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)

    def one(pos: torch.Tensor) -> torch.Tensor:
        out = pos.to(torch.float64)[:, None] * omega[None]
        return torch.cat([out.sin(), out.cos()], dim=1)

    yy, xx = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    return torch.cat([one(yy.flatten()), one(xx.flatten())], dim=1).float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """MAE's initialisation: xavier-uniform linears, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ViTEncoder(nn.Module):
    def __init__(self, shape: ViTShape) -> None:
        super().__init__()
        self.shape = shape
        self.embed = nn.Conv2d(shape.in_channels, shape.dim, shape.patch, stride=shape.patch)
        self.blocks = nn.ModuleList([Block(shape.dim, shape.heads, shape.mlp_ratio)
                                     for _ in range(shape.depth)])
        self.norm = nn.LayerNorm(shape.dim, eps=1e-6)
        init_weights(self)
        w = self.embed.weight.data  # as a linear layer (MAE), not as a conv
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def grid(self, h: int, w: int) -> tuple[int, int]:
        p = self.shape.patch
        if h % p or w % p:
            raise BadInput(f"image {h} x {w} px is not a whole number of {p} px ViT patches")
        return h // p, w // p

    def tokens(self, image: torch.Tensor) -> torch.Tensor:
        """Patch embeddings with positions, [B, N, dim], row-major over the token grid."""
        gh, gw = self.grid(*image.shape[-2:])
        x = self.embed(image).flatten(2).transpose(1, 2)
        return x + sincos_positions(gh, gw, self.shape.dim).to(x)

    def forward(self, image: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded tokens [B, N, dim]; with `keep` [B, K] only those tokens (the MAE's
        visible set) go through the blocks."""
        x = self.tokens(image)
        if keep is not None:
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, x.shape[-1]))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


HEADS = ("linear", "shallow")


class ViTDense(nn.Module):
    """Encoder + a head decoding each token to its patch's pixels (out_channels each).

    `linear`: one linear map per token (the probe of the MAE paper, made dense);
    `shallow`: a 3x3 convolution over the token grid with GELU first, then the linear map.
    """

    def __init__(self, shape: ViTShape, out_channels: int, head: str = "linear") -> None:
        super().__init__()
        if head not in HEADS:
            raise BadInput(f"model.head {head!r}: use one of {', '.join(HEADS)}")
        self.encoder = ViTEncoder(shape)
        p, d = shape.patch, shape.dim
        layers: list[nn.Module] = []
        if head == "shallow":
            layers += [nn.Conv2d(d, d, 3, padding=1), nn.GELU()]
        layers.append(nn.Conv2d(d, out_channels * p * p, 1))
        self.head = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        gh, gw = self.encoder.grid(*image.shape[-2:])
        x = self.encoder(image)
        x = x.transpose(1, 2).reshape(x.shape[0], -1, gh, gw)
        return F.pixel_shuffle(self.head(x), self.encoder.shape.patch)

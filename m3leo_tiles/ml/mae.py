"""The masked autoencoder (He et al. 2022) on store samples, nodata-aware.

A random 75 % of the patches is hidden; the encoder sees only the rest, a light decoder
predicts every hidden patch's pixels. The loss is on hidden patches only, against targets
normalised per patch (the MAE paper's norm_pix_loss), here per channel of the patch, because
channels are different physical quantities (dB, coherence, reflectance). Pixels without data
(NaN in the store) are counted nowhere: not in the loss, not in a patch's mean or variance.
The DataModule turns them into 0 for the encoder's input; `present` says which they were.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from .vit import Block, ViTEncoder, ViTShape, init_weights, sincos_positions

MIN_PRESENT = 2  # a patch channel with fewer pixels of data has no variance to normalise by


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, C, p*p], tokens row-major as the encoder's."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c, p * p)


def random_mask(b: int, n: int, ratio: float, device: torch.device,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep [B, K] sorted token indices, masked [B, N] bool); K = round(N * (1 - ratio)) >= 1."""
    k = max(1, int(round(n * (1.0 - ratio))))
    noise = torch.rand(b, n, generator=generator, device=generator.device if generator
                       else device).to(device)
    keep = noise.argsort(dim=1)[:, :k].sort(dim=1).values
    masked = torch.ones(b, n, dtype=torch.bool, device=device)
    masked.scatter_(1, keep, False)
    return keep, masked


def normalised_targets(image: torch.Tensor, present: torch.Tensor, p: int,
                       norm_pix: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per patch and channel: (x - mean) / std over the pixels with data (`norm_pix`; else x
    as it is); and the weight of each element (1 where it has data and its patch channel has
    >= MIN_PRESENT of them)."""
    t = patchify(image, p)
    m = patchify(present.to(t.dtype), p)
    t = torch.where(m > 0, t, torch.zeros_like(t))  # a NaN under a hole goes nowhere
    count = m.sum(-1, keepdim=True)
    mean = (t * m).sum(-1, keepdim=True) / count.clamp(min=1)
    var = (((t - mean) * m) ** 2).sum(-1, keepdim=True) / count.clamp(min=1)
    tn = (t - mean) / (var + 1e-6).sqrt() if norm_pix else t
    return tn, m * (count >= MIN_PRESENT)


def masked_loss(pred: torch.Tensor, image: torch.Tensor, present: torch.Tensor,
                masked: torch.Tensor, p: int, norm_pix: bool = True) -> torch.Tensor:
    """Mean squared error over the hidden patches' elements that have data. `pred` is
    [B, N, C * p * p] in normalised-target units; 0 (with no gradient) if nothing counts."""
    tn, w = normalised_targets(image, present, p, norm_pix)
    w = w * masked[:, :, None, None]
    err = (pred.reshape(tn.shape) - tn) ** 2
    total = w.sum()
    return (err * w).sum() / total if total > 0 else pred.sum() * 0.0


def visible_mean_prediction(image: torch.Tensor, present: torch.Tensor, masked: torch.Tensor,
                            p: int, norm_pix: bool = True) -> torch.Tensor:
    """The baseline that learned nothing: every hidden pixel predicted by the mean of the
    visible patches' pixels with data (per sample and channel), put through the same per-patch
    normalisation as the target (`norm_pix`). Returns [B, N, C * p * p] for `masked_loss`.
    With norm_pix any constant scores >= 1 (1 is the hidden patch's own mean, an oracle)."""
    t = patchify(image, p)
    m = patchify(present.to(t.dtype), p)
    vis = m * (~masked)[:, :, None, None]
    t = torch.where(m > 0, t, torch.zeros_like(t))
    mean_vis = (t * vis).sum((1, 3)) / vis.sum((1, 3)).clamp(min=1)  # [B, C]
    count = m.sum(-1, keepdim=True)
    pmean = (t * m).sum(-1, keepdim=True) / count.clamp(min=1)
    pvar = (((t - pmean) * m) ** 2).sum(-1, keepdim=True) / count.clamp(min=1)
    const = mean_vis[:, None, :, None].expand_as(t)
    if not norm_pix:
        return const.reshape(t.shape[0], t.shape[1], -1)
    return ((const - pmean) / (pvar + 1e-6).sqrt()).reshape(t.shape[0], t.shape[1], -1)


class MAE(nn.Module):
    """ViT encoder on the visible patches; decoder: linear to dec_dim, mask tokens, positions,
    `dec_depth` blocks, a linear map to each patch's C * p * p pixels."""

    def __init__(self, shape: ViTShape, dec_dim: int = 512, dec_depth: int = 8,
                 dec_heads: int = 16) -> None:
        super().__init__()
        self.encoder = ViTEncoder(shape)
        self.dec_dim = dec_dim
        self.dec_embed = nn.Linear(shape.dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.dec_blocks = nn.ModuleList([Block(dec_dim, dec_heads, 4.0)
                                         for _ in range(dec_depth)])
        self.dec_norm = nn.LayerNorm(dec_dim, eps=1e-6)
        self.dec_pred = nn.Linear(dec_dim, shape.in_channels * shape.patch ** 2)
        for part in (self.dec_embed, self.dec_blocks, self.dec_norm, self.dec_pred):
            init_weights(part)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Predicted pixels of every patch [B, N, C * p * p] (only hidden ones are scored)."""
        gh, gw = self.encoder.grid(*image.shape[-2:])
        n = gh * gw
        x = self.dec_embed(self.encoder(image, keep))
        b, k, d = x.shape
        full = self.mask_token.expand(b, n, d).clone()
        full.scatter_(1, keep[..., None].expand(-1, -1, d), x)
        full = full + sincos_positions(gh, gw, d).to(full)
        for block in self.dec_blocks:
            full = block(full)
        return self.dec_pred(self.dec_norm(full))


class MAETask(L.LightningModule):
    """Pretraining: AdamW (MAE's betas 0.9/0.95, weight decay 0.05), loss on hidden patches.
    Validation masks with a fixed seed, so its loss compares across epochs and runs; it also
    logs the visible-mean baseline's loss on the same masks (val/mean_loss)."""

    def __init__(self, vit: dict, channels: list[str], dec_dim: int = 512, dec_depth: int = 8,
                 dec_heads: int = 16, mask_ratio: float = 0.75, lr: float = 1.5e-4,
                 weight_decay: float = 0.05, norm_pix: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.shape = ViTShape(**vit)
        self.mae = MAE(self.shape, dec_dim, dec_depth, dec_heads)
        self.results: dict[str, float] = {}
        self._sums: dict[str, list[float]] = {}

    def losses(self, batch: dict, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(model loss, visible-mean loss, number of scored elements) on one random mask."""
        image, present = batch["image"], batch["present"]
        if image.dim() == 5:  # [B, T, C, H, W]: periods become channels
            image, present = image.flatten(1, 2), present.flatten(1, 2)
        p = self.shape.patch
        gh, gw = self.mae.encoder.grid(*image.shape[-2:])
        keep, masked = random_mask(image.shape[0], gh * gw, self.hparams["mask_ratio"],
                                   image.device, generator)
        norm = bool(self.hparams["norm_pix"])
        pred = self.mae(image, keep)
        loss = masked_loss(pred, image, present, masked, p, norm)
        with torch.no_grad():
            base = masked_loss(visible_mean_prediction(image, present, masked, p, norm), image,
                               present, masked, p, norm)
            _, w = normalised_targets(image, present, p)
            n = (w * masked[:, :, None, None]).sum()
        return loss, base, n

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, base, n = self.losses(batch)
        self._accumulate("train", loss, base, n)
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=len(batch["image"]))
        return loss

    def _eval_step(self, batch: dict, batch_idx: int, stage: str) -> None:
        g = torch.Generator().manual_seed(1000 + batch_idx)
        loss, base, n = self.losses(batch, g)
        self._accumulate(stage, loss, base, n)
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=len(batch["image"]))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "test")

    def _accumulate(self, stage: str, loss: torch.Tensor, base: torch.Tensor,
                    n: torch.Tensor) -> None:
        s = self._sums.setdefault(stage, [0.0, 0.0, 0.0])
        w = float(n)
        s[0] += float(loss.detach()) * w
        s[1] += float(base) * w
        s[2] += w

    def _epoch_end(self, stage: str) -> None:
        s = self._sums.pop(stage, None)
        if s and s[2] > 0:
            self.results[f"{stage}_loss"] = s[0] / s[2]
            self.results[f"{stage}_mean_loss"] = s[1] / s[2]
            self.log(f"{stage}/mean_loss", s[1] / s[2])

    def on_train_epoch_end(self) -> None:
        self._epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        decay = [p for n, p in self.named_parameters() if p.dim() > 1 and "mask_token" not in n]
        no_decay = [p for n, p in self.named_parameters() if p.dim() <= 1 or "mask_token" in n]
        return torch.optim.AdamW([{"params": decay, "weight_decay": self.hparams["weight_decay"]},
                                  {"params": no_decay, "weight_decay": 0.0}],
                                 lr=self.hparams["lr"], betas=(0.9, 0.95))

"""The LightningModule: a UNet, the right loss per task, and split-level metrics.

Segmentation: cross-entropy with the ignore index, one confusion matrix per split. Regression:
the network predicts on the working grid in standardised target units; the prediction is
average-pooled onto the target's own (nested, coarser) grid before the loss, and RMSE is
computed there in physical units on float targets. Adam at fdlsar's 1e-4 by default.
The network is a UNet or a ViT with a dense head (`encoder`, see NETS); `freeze` keeps a
pretrained ViT encoder's weights as they are (a probe: only the head trains).
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import Metric

from .metrics import RegressionMetrics, SegmentationMetrics
from .spec import IGNORE_INDEX
from .unet import PaddingMode, UNet
from .vit import ViTDense, ViTShape

STAGES = ("train", "val", "test")


def _unet(hp: dict, out_channels: int) -> torch.nn.Module:
    return UNet(hp["in_channels"], out_channels, hp["base"], hp["depth"], hp["padding_mode"])


def _vit(hp: dict, out_channels: int) -> torch.nn.Module:
    return ViTDense(ViTShape(**hp["vit"]), out_channels, hp["head"])


NETS = {"unet": _unet, "vit": _vit}


class TileTask(L.LightningModule):
    def __init__(self, in_channels: int, task: str = "segmentation", num_classes: int = 11,
                 target_factor: int = 1, target_mean: float = 0.0, target_std: float = 1.0,
                 lr: float = 1e-4, base: int = 32, depth: int = 4,
                 padding_mode: PaddingMode = "reflect", encoder: str = "unet",
                 vit: dict | None = None, head: str = "linear", freeze: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.task = task
        self.model = NETS[encoder](dict(self.hparams),
                                   num_classes if task == "segmentation" else 1)
        if freeze:
            self.encoder.requires_grad_(False)
        if task == "segmentation":
            self.metrics = torch.nn.ModuleDict(
                {f"m_{s}": SegmentationMetrics(num_classes, IGNORE_INDEX) for s in STAGES})
        else:
            self.metrics = torch.nn.ModuleDict({f"m_{s}": RegressionMetrics() for s in STAGES})
        self.results: dict[str, dict[str, float | list[float | None]]] = {}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() == 5:  # [B, T, C, H, W]: periods become channels for the 2-D UNet
            image = image.flatten(1, 2)
        return self.model(image)

    def predict_target(self, image: torch.Tensor) -> torch.Tensor:
        """Class indices [B, H, W], or the physical-unit prediction on the target grid."""
        out = self(image)
        if self.task == "segmentation":
            return out.argmax(dim=1)
        return (self._to_target_grid(out) * self.hparams["target_std"]
                + self.hparams["target_mean"])

    def _to_target_grid(self, out: torch.Tensor) -> torch.Tensor:
        k = self.hparams["target_factor"]
        return (F.avg_pool2d(out, k) if k > 1 else out)[:, 0]

    def _metric(self, stage: str) -> Metric:
        """The stage's metric (a ModuleDict hands back a bare Module)."""
        m = self.metrics[f"m_{stage}"]
        assert isinstance(m, Metric)
        return m

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        out = self(batch["image"])
        n = batch["image"].shape[0]
        if self.task == "segmentation":
            mask = batch["mask"]
            if (mask != IGNORE_INDEX).any():
                loss = F.cross_entropy(out, mask, ignore_index=IGNORE_INDEX)
            else:
                loss = out.sum() * 0.0
            self._metric(stage).update(out.detach().argmax(dim=1), mask)
        else:
            mean, std = self.hparams["target_mean"], self.hparams["target_std"]
            pred = self._to_target_grid(out)
            valid = batch["target_valid"]
            z = (batch["target"] - mean) / std
            loss = F.mse_loss(pred[valid], z[valid]) if valid.any() else pred.sum() * 0.0
            self._metric(stage).update(pred.detach() * std + mean, batch["target"], valid)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=n,
                 prog_bar=stage != "train")
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def _epoch_end(self, stage: str) -> None:
        m = self._metric(stage)
        values = m.compute()
        for k, v in values.items():
            self.log(f"{stage}/{k}", v, sync_dist=False)
        res: dict[str, float | list[float | None]] = {k: float(v) for k, v in values.items()}
        if isinstance(m, SegmentationMetrics):
            # null where a class is in neither labels nor predictions (strict JSON, no NaN)
            res["per_class_iou"] = [float(x) if x == x else None for x in m.per_class_iou()]
        self.results[stage] = res
        m.reset()

    def on_train_epoch_end(self) -> None:
        self._epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def train(self, mode: bool = True) -> TileTask:
        super().train(mode)
        if self.hparams.get("freeze"):  # a frozen encoder stays in inference mode
            self.encoder.eval()
        return self

    @property
    def encoder(self) -> torch.nn.Module:
        """The ViT's encoder (what `freeze` and `model.init` are about)."""
        enc = self.model.encoder
        assert isinstance(enc, torch.nn.Module)
        return enc

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad],
                                lr=self.hparams["lr"])

"""Metrics over a whole split, not averaged per batch (fdlsar's `test/miou` is a batch mean).

`SegmentationMetrics` accumulates one confusion matrix over every pixel of the split, leaving
out the ignore index, and reports IoU_c = TP / (TP + FP + FN) per class and their mean over
the classes that occur (in the labels or the predictions); `RegressionMetrics` accumulates the
squared error of float targets over valid pixels only (fdlsar casts targets to integers first).
Both are torchmetrics `Metric`s, so their sums add up across processes.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


class SegmentationMetrics(Metric):
    full_state_update = False
    confusion: torch.Tensor  # add_state's buffer, declared so its type is not Module's getattr

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state("confusion", default=torch.zeros(num_classes, num_classes,
                                                         dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred: class indices (or logits [B, K, H, W]); target: [B, H, W] with ignore index."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(dim=1)
        keep = target != self.ignore_index
        t = target[keep].long()
        p = pred[keep].long()
        k = self.num_classes
        self.confusion += torch.bincount(t * k + p, minlength=k * k).reshape(k, k)

    def per_class_iou(self) -> torch.Tensor:
        """IoU per class; NaN where the class is in neither labels nor predictions."""
        cm = self.confusion.double()
        tp = cm.diag()
        union = cm.sum(0) + cm.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))

    def compute(self) -> dict[str, torch.Tensor]:
        iou = self.per_class_iou()
        cm = self.confusion.double()
        total = cm.sum()
        return {"miou": torch.nanmean(iou) if torch.isfinite(iou).any() else torch.tensor(0.0),
                "accuracy": cm.diag().sum() / total if total > 0 else torch.tensor(0.0)}


class RegressionMetrics(Metric):
    full_state_update = False
    sse: torch.Tensor  # add_state's buffers, declared so their type is not Module's getattr
    sae: torch.Tensor
    n: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("sse", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sae", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        d = (pred.double() - target.double())[valid]
        self.sse += (d * d).sum()
        self.sae += d.abs().sum()
        self.n += valid.sum()

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.n.clamp(min=1).double()
        return {"rmse": torch.sqrt(self.sse / n), "mae": self.sae / n}

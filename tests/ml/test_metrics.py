"""Metrics over the whole split with the ignore index, checked by hand."""

from __future__ import annotations

import numpy as np
import torch

from m3leo_tiles.ml.metrics import RegressionMetrics, SegmentationMetrics


def test_miou_is_one_confusion_matrix_over_the_split_not_a_batch_mean():
    m = SegmentationMetrics(3, ignore_index=255)
    # batch 1: labels 0 0 1 255, predictions 0 1 1 2 (the ignored pixel's prediction is moot)
    m.update(torch.tensor([[0, 1, 1, 2]]), torch.tensor([[0, 0, 1, 255]]))
    # batch 2: labels 2 2 2 1, predictions 2 2 0 1
    m.update(torch.tensor([[2, 2, 0, 1]]), torch.tensor([[2, 2, 2, 1]]))
    # by hand over both batches: class 0: TP 1, FP 1 (batch 2), FN 1 -> 1/3
    # class 1: TP 2, FP 1, FN 0 -> 2/3; class 2: TP 2, FP 0, FN 1 -> 2/3
    out = m.compute()
    iou = m.per_class_iou().numpy()
    np.testing.assert_allclose(iou, [1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(float(out["miou"]), (1 / 3 + 2 / 3 + 2 / 3) / 3)
    np.testing.assert_allclose(float(out["accuracy"]), 5 / 7)
    # what fdlsar reports (mean of per-batch macro IoU) differs: batch 1 alone is (1/2+1/2+0)/3
    b1 = SegmentationMetrics(3)
    b1.update(torch.tensor([[0, 1, 1, 2]]), torch.tensor([[0, 0, 1, 255]]))
    assert abs(float(b1.compute()["miou"]) - float(out["miou"])) > 0.05


def test_absent_classes_do_not_count_and_logits_are_accepted():
    m = SegmentationMetrics(4)
    logits = torch.zeros(1, 4, 1, 3)
    logits[0, 0, 0, 0] = logits[0, 1, 0, 1] = logits[0, 1, 0, 2] = 1.0
    m.update(logits, torch.tensor([[[0, 1, 0]]]))
    iou = m.per_class_iou()
    assert torch.isnan(iou[2:]).all()
    np.testing.assert_allclose(iou[:2].numpy(), [1 / 2, 1 / 2])
    np.testing.assert_allclose(float(m.compute()["miou"]), 0.5)


def test_rmse_on_float_targets_over_valid_pixels_only():
    m = RegressionMetrics()
    t = torch.tensor([[0.4, 1.6, 100.0]])
    p = torch.tensor([[0.0, 2.0, 0.0]])
    v = torch.tensor([[True, True, False]])
    m.update(p, t, v)
    m.update(torch.tensor([[1.0]]), torch.tensor([[0.7]]), torch.tensor([[True]]))
    out = m.compute()
    want = np.sqrt((0.4 ** 2 + 0.4 ** 2 + 0.3 ** 2) / 3)  # integer casting would give 0, 0, 1
    np.testing.assert_allclose(float(out["rmse"]), want, rtol=1e-6)
    np.testing.assert_allclose(float(out["mae"]), (0.4 + 0.4 + 0.3) / 3, rtol=1e-6)

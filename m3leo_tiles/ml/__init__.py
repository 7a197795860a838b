"""The store in PyTorch: datasets, statistics, a DataModule, a UNet and the M3LEO baselines.

Needs the optional `[ml]` extra (torch, lightning, torchmetrics, hydra-core). Conventions are
TorchGeo's (sample dicts with `image` / `mask`, batch-wise normalisation), the experiment grid
is fdlsar's (spaceml-org/M3LEO configs), with its documented faults fixed (see README).
"""

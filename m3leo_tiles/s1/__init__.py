"""Sentinel-1 product access: burst ids, product/pair/burst references, the archive scanner,
pairing, orbit files, downloads and ASF burst products made into SAFEs.

Layer: above errors/periods/grid, below sar; it never imports sar, sources, store or runner.
Anchors: s1-reader's s1_burst_id.py / s1_orbit.py (ids and orbit choice), ASF's burst2safe
(burst products -> SAFE), the S1 Product Specification (S1-RS-MDA-52-7441).
"""

from .burst_id import BurstId, esa_burst_id
from .products import BurstRef, S1Pair, S1Product

__all__ = ["BurstId", "BurstRef", "S1Pair", "S1Product", "esa_burst_id"]

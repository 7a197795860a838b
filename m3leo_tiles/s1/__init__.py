"""Sentinel-1 product access: burst ids, product/pair/burst references, the archive scanner,
pairing, ASF search, orbit files, downloads and ASF burst products made into SAFEs.

Layer: above errors/periods/grid, below sar; it never imports sar, sources, store or runner.
Anchors: s1-reader's s1_burst_id.py / s1_orbit.py (ids and orbit choice), ASF's burst2safe
(burst products -> SAFE), the S1 Product Specification (S1-RS-MDA-52-7441).

Modules: `burst_id` (BurstId), `products` (S1Product, S1Pair, BurstRef, burst_refs),
`archive` (scan_archive, read_product), `pairing` (form_pairs, tiles_for_pair), `search`
(search_products, frame_bursts), `orbits` (choose, find_orbit, find_eof, fetch_orbit, parse_eof),
`download` (DownloadCache, fetch_product, fetch_burst_safe), `bursts` (assemble_safe).
"""

from .burst_id import BurstId, esa_burst_id
from .products import BurstRef, S1Pair, S1Product, burst_refs

__all__ = ["BurstId", "BurstRef", "S1Pair", "S1Product", "burst_refs", "esa_burst_id"]

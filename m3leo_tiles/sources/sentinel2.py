"""Sentinel-2 L2A rules both optical paths (Earth Engine and local rasters) apply.

Scene classification (SCL) classes and the processing-baseline offset follow ESA's
"Sentinel-2 Products Specification Document" (S2-PDGS-TAS-DI-PSD, L2A SCL table) and the
baseline 04.00 note (BOA_ADD_OFFSET = -1000 from 25 January 2022).
"""

from __future__ import annotations

from typing import Any

#: SCL classes that are not clear ground: no data, saturated, cloud shadow, clouds, cirrus
SCL_INVALID = (0, 1, 3, 8, 9, 10)


def boa_offset(props: dict[str, Any]) -> float:
    """The L2A offset to add to DN: -1000 from processing baseline 04.00 on, else 0."""
    for key in ("s2:boa_add_offset", "boa_add_offset"):
        if props.get(key) is not None:
            return float(props[key])
    if props.get("earthsearch:boa_offset_applied"):
        return 0.0
    try:
        return -1000.0 if float(props.get("s2:processing_baseline", 0)) >= 4.0 else 0.0
    except (TypeError, ValueError):
        return 0.0


__all__ = ["SCL_INVALID", "boa_offset"]
